/*
 * rules.c - a --rules file compiled into a lookup structure, and the
 * lookup.  Pure: the text comes from memory, errors go back as
 * "LINE: reason" (the caller adds FILE), nothing is logged.
 *
 * A line is ADDRESS:INSTRUCTIONS, as tcprules(1) reads it; a line whose
 * first non-blank is '#' is a comment, blank lines are skipped, a
 * trailing CR is dropped.  The address ends at the first ':' followed by
 * "allow" or "deny" (an IPv6 address has colons, but never those
 * letters: ucspi-tcp-ipv6's tcprules splits the same way).  An address
 * tcprules would store but tcpserver could never match (a name, 1.2.3
 * without its dot, 1.2.3.300, a range before the last number) is an
 * error here, with the reason.  ADDRESS is one of
 *   (empty)          the default: every client no other rule matches
 *   1.2.3.4          an IPv4 address; 1.2.3.4-19 a range of the last number
 *   10.  192.168.1.  a dotted prefix: /8, /16, /24 (10.2-3. a range too)
 *   ::1  2001:db8::5 an IPv6 address (any spelling inet_pton takes)
 *   2001:db8:        an IPv6 prefix of whole groups ending in ':' (the
 *                    line 2001:db8::allow): 2001:db8::/32.  Ending in
 *                    '::' (2001:db8:::allow), the '::' counts as the two
 *                    zero groups it stands for at least: 2001:db8::/64;
 *                    '::' alone ::/32.  tcpserver compares these as text
 *                    with its formatted address, which misses hosts
 *                    whose zeros it compresses inside the prefix; here
 *                    each is the network it names
 *   ADDR/LEN         acceptd: a CIDR network, either family (cidr_parse)
 *   unix:uid=N       acceptd: a unix-socket peer by uid; unix:gid=N by gid
 * Names (=host, host.example) and USER@ADDR need DNS or ident lookups,
 * which acceptd does not do: an error, not a rule that never matches.
 *
 * INSTRUCTIONS are "allow" or "deny", then ",NAME=QvalueQ" items where Q
 * is any character (the one after '=') and the value runs to its next
 * occurrence: A="x", A=/x/ and A=xyx (value "y") as in tcprules.  NAME is
 * an environment variable for the handler, except these, acceptd's own:
 *   ,-NAME                unset NAME
 *   ,msg="421 busy\r\n"   deny only: written to the client before the
 *                         close; \r \n \t \\ \" (and \Q) escapes, 512 bytes
 *   ,exec="/path arg..."  allow only: run this PROGRAM instead (words split
 *                         as the config file's exec =; an absolute path)
 *   ,max-per-source=N     allow only: this client's -C (1-1000000)
 *   ,rate=N/SECS          allow only: this client's --rate
 *                         (N quoted or not: a value starting with a digit
 *                         runs to the next ',', unlike a variable's)
 * (so a tcprules file that sets a variable named msg, exec, rate or
 * max-per-source means something else here), and a NAME is not empty and
 * has no ','.
 *
 * The most specific rule wins: the longest matching prefix (an exact
 * address is /32 or /128, a range is its addresses), then the default; a
 * unix peer's uid rule, then its gid rule, then the default.  Two rules
 * for the same network: the first wins, as with tcprules' cdb.
 *
 * At most 2,000,000 networks (a range's addresses each count).
 *
 * Lookup: every (family, prefix length) pair is a key prefix in one
 * table.c hash table (keyed SipHash, so no client address can aim at a
 * slow probe); a lookup probes only the lengths some rule uses, longest
 * first: at most 33 probes for IPv4, 129 for IPv6, whatever the count.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define RULES_MSG_MAX 512	/* one non-blocking send takes it whole */
#define RULES_ARGV_MAX 64
#define RULES_LIMIT_MAX 1000000	/* as -C and --rate's N */
#define RULES_SECS_MAX (24 * 3600)
#define RULES_ENTRIES_MAX 2000000	/* addresses and networks, a range's each */

/* Key byte 0: what kind of network; byte 1: its length; then the masked
 * address (or the id).  The rest stays zero. */
enum { KEY_V4 = 4, KEY_V6 = 6, KEY_UID = 'u', KEY_GID = 'g' };

struct entry {
	unsigned char key[TABLE_KEY_MAX];
	struct rule *rule;
};

#define HINT_BITS 20	/* the prefilter: 2^20 bits, 128 KiB */

struct rules {
	struct table *t;	/* key -> struct rule * */
	uint8_t *hint;		/* a bit per (kind, length, first 16 bits)
				 * some entry has: a clear one saves a probe */
	const struct rule *def;
	uint64_t used[3];	/* IPv4 lengths 0-32: bits of used[0] */
	uint64_t used6[3];	/* IPv6 lengths 0-128 */
	struct rule **all;	/* every rule, for rules_free */
	size_t n, cap;
	struct entry *pend;	/* entries until the table is made */
	size_t npend, cappend;
};

/* What an address compiles to before it becomes entries. */
struct target {
	int kind;		/* KEY_*, or 0 for the default */
	unsigned len;
	uint8_t addr[16];
	int range_at;		/* byte index of a range, -1 none */
	unsigned lo, hi;
};

static int why(char *err, size_t errlen, const char *s)
{
	snprintf(err, errlen, "%s", s);
	return -1;
}

static void set_used(uint64_t *bits, unsigned len)
{
	bits[len / 64] |= (uint64_t)1 << (len % 64);
}

static bool is_used(const uint64_t *bits, unsigned len)
{
	return bits[len / 64] & ((uint64_t)1 << (len % 64));
}

/* A decimal 0-max, no sign, no leading zero; n chars at s. */
static int parse_num(const char *s, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 7 || (s[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* 1.2.3.4, 1.2.3.4-19, 10., 192.168.1., 10.2-3.: a range only in the
 * last number written. */
static int parse_dotted(const char *a, struct target *t, char *err, size_t errlen)
{
	size_t alen = strlen(a);
	bool prefix = alen > 0 && a[alen - 1] == '.';
	unsigned n = 0;
	const char *p = a;

	if (prefix)
		alen--;
	t->kind = KEY_V4;
	for (;;) {
		size_t w = strcspn(p, ".");
		const char *dash;
		unsigned long lo, hi;

		if ((size_t)(p - a) + w > alen)
			w = alen - (size_t)(p - a);
		if (n == 4)
			return why(err, errlen, prefix ?
				   "a dotted prefix has at most three numbers" :
				   "an IPv4 address has four numbers");
		dash = memchr(p, '-', w);
		if (dash && (size_t)(p - a) + w < alen)
			return why(err, errlen, "a range (A-B) only in the last number");
		if (parse_num(p, dash ? (size_t)(dash - p) : w, 255, &lo) < 0 ||
		    (dash && parse_num(dash + 1, w - (size_t)(dash + 1 - p), 255, &hi) < 0))
			return why(err, errlen, "an IPv4 number is 0-255, in decimal "
				   "without leading zeros");
		if (dash && hi < lo)
			return why(err, errlen, "a range A-B needs A <= B");
		if (dash) {
			t->range_at = (int)n;
			t->lo = (unsigned)lo;
			t->hi = (unsigned)hi;
		}
		t->addr[n++] = (uint8_t)lo;
		p += w;
		if ((size_t)(p - a) >= alen)
			break;
		p++;
	}
	if (prefix && n > 3)
		return why(err, errlen, "a dotted prefix has at most three numbers");
	if (!prefix && n != 4)
		return why(err, errlen, "an IPv4 address has four numbers "
			   "(a prefix ends with '.', as 10.)");
	t->len = prefix ? 8 * n : 32;
	return 0;
}

/* One to four hex digits. */
static int parse_group(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 4)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
			     c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) :
			     c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16;

		if (d == 16)
			return -1;
		v = v * 16 + d;
	}
	*out = v;
	return 0;
}

/* 2001:db8: is /32; 2001:db8:: is /64 (the '::' is at least two zero
 * groups); :: alone /32. */
static int parse_v6_prefix(const char *a, struct target *t, char *err, size_t errlen)
{
	size_t alen = strlen(a);
	bool two = alen >= 2 && a[alen - 2] == ':';
	size_t body = alen - (two ? 2 : 1);
	unsigned k = 0;

	t->kind = KEY_V6;
	for (size_t i = 0; i < body;) {
		size_t w = strcspn(a + i, ":");
		unsigned g;

		if (i + w > body)
			w = body - i;
		if (k == 8 || parse_group(a + i, w, &g) < 0)
			return why(err, errlen, "an IPv6 prefix is whole groups of 1-4 hex "
				   "digits ending in ':' (2001:db8:), or use ADDR/LEN");
		t->addr[2 * k] = (uint8_t)(g >> 8);
		t->addr[2 * k + 1] = (uint8_t)g;
		k++;
		i += w + 1;
	}
	if (k == 0 && !two)
		return why(err, errlen, "an IPv6 prefix starts with a group (or '::')");
	if (k + (two ? 2 : 1) > 8)	/* 1:2:3:4:5:6:7:8: is no prefix */
		return why(err, errlen, "an IPv6 prefix has at most eight groups");
	t->len = 16 * (k + (two ? 2 : 0));
	return 0;
}

static int from_cidr(const char *a, struct target *t, char *err, size_t errlen)
{
	struct cidr c;

	if (cidr_parse(a, &c, err, errlen) < 0)
		return -1;
	if (c.family == AF_UNIX) {
		t->kind = c.prefix == CIDR_UID ? KEY_UID : KEY_GID;
		t->len = 0;
	} else {
		t->kind = c.family == AF_INET ? KEY_V4 : KEY_V6;
		t->len = c.prefix;
	}
	memcpy(t->addr, c.addr, 16);
	return 0;
}

static int parse_target(const char *a, struct target *t, char *err, size_t errlen)
{
	size_t alen = strlen(a);

	memset(t, 0, sizeof *t);
	t->range_at = -1;
	if (alen == 0)
		return 0;	/* the default */
	if (strpbrk(a, " \t"))
		return why(err, errlen, "a blank in the address (tcprules reads none: "
			   "it would never match)");
	if (strchr(a, '@'))
		return why(err, errlen, "USER@ADDRESS rules need ident lookups, "
			   "which acceptd does not do");
	if (strncmp(a, "unix:", 5) == 0)
		return from_cidr(a, t, err, errlen);
	if (strcmp(a, "all") == 0)
		return why(err, errlen, "not an address (the default rule has an "
			   "empty address)");
	if (a[0] != '=' && (strchr(a, '/') || strchr(a, ':'))) {
		if (strchr(a, '-'))
			return why(err, errlen, "a range (A-B) is for a plain IPv4 address or dotted prefix");
		if (!strchr(a, '/') && a[alen - 1] == ':')
			return parse_v6_prefix(a, t, err, errlen);
		if (from_cidr(a, t, err, errlen) == 0)
			return 0;
		/* 2001:db8:allow reads as the address "2001:db8" */
		if (!strchr(a, '/') && !strstr(a, "::") &&
		    a[strspn(a, "0123456789abcdefABCDEF:")] == '\0')
			return why(err, errlen, "not an IPv6 address (a prefix ends "
				   "with ':', as 2001:db8::allow for 2001:db8:)");
		return -1;
	}
	if (a[strspn(a, "0123456789.-")] != '\0')
		return why(err, errlen, "host name rules need DNS lookups, which "
			   "acceptd does not do: write the address");
	return parse_dotted(a, t, err, errlen);
}

/* The value after NAME=: its first character Q is the quote, the value
 * runs to the next Q.  With escapes (msg=), a backslash takes the next
 * character with it, so \" does not end a "-quoted value.  *pp is
 * advanced past the closing quote; the value is NUL-terminated in place. */
static char *take_value(char **pp, bool escapes, char *err, size_t errlen)
{
	char *p = *pp, q = *p, *v;

	if (q == '\0') {
		why(err, errlen, "no value after '=' (write NAME=\"value\")");
		return NULL;
	}
	v = ++p;
	while (*p && *p != q) {
		if (escapes && *p == '\\' && p[1])
			p++;
		p++;
	}
	if (*p != q) {
		snprintf(err, errlen, "unterminated value: the character after '=' "
			 "(%c) quotes it and must end it too", q);
		return NULL;
	}
	*p = '\0';
	*pp = p + 1;
	return v;
}

/* C-style escapes, in place; the length comes back. */
static int unescape(char *v, char q, size_t *len, char *err, size_t errlen)
{
	char *w = v;

	for (char *r = v; *r; r++) {
		char c = *r;

		if (c == '\\') {
			c = *++r;
			c = c == 'r' ? '\r' : c == 'n' ? '\n' : c == 't' ? '\t' :
			    c == '\\' ? '\\' : c == '"' ? '"' : c == q ? q : 0;
			if (!c)
				return why(err, errlen, "msg: only \\r, \\n, \\t, \\\\ and "
					   "\\\" may follow a backslash");
		}
		*w++ = c;
	}
	*len = (size_t)(w - v);
	if (*len == 0)
		return why(err, errlen, "msg: empty (leave it out for none)");
	if (*len > RULES_MSG_MAX)
		return why(err, errlen, "msg: longer than 512 bytes");
	return 0;
}

static int add_var(struct rule *r, const char *name, const char *value,
		   char *err, size_t errlen)
{
	struct rule_var *v = realloc(r->vars, (r->n_vars + 1) * sizeof *v);

	if (!v)
		return why(err, errlen, "out of memory");
	v[r->n_vars].name = name;
	v[r->n_vars].value = value;
	r->vars = v;
	r->n_vars++;
	return 0;
}

static int set_exec(struct rule *r, char *v, char *err, size_t errlen)
{
	char *argv[RULES_ARGV_MAX];
	char sub[96];
	int n = confline_split_words(v, argv, RULES_ARGV_MAX, sub, sizeof sub);

	if (n < 0) {
		snprintf(err, errlen, "exec: %s", sub);
		return -1;
	}
	if (n == 0)
		return why(err, errlen, "exec: no program");
	/* As inetd.conf's server path: the file must not mean another
	 * program when acceptd's PATH differs (a reload as --user). */
	if (argv[0][0] != '/')
		return why(err, errlen, "exec: the program needs an absolute path");
	r->argv = calloc((size_t)n + 1, sizeof *r->argv);
	if (!r->argv)
		return why(err, errlen, "out of memory");
	memcpy(r->argv, argv, (size_t)n * sizeof *argv);
	return 0;
}

static int set_rate(struct rule *r, const char *v, char *err, size_t errlen)
{
	const char *slash = strchr(v, '/');
	unsigned long n, secs;

	if (!slash || parse_num(v, (size_t)(slash - v), RULES_LIMIT_MAX, &n) < 0 || n < 1 ||
	    parse_num(slash + 1, strlen(slash + 1), RULES_SECS_MAX, &secs) < 0 || secs < 1)
		return why(err, errlen, "rate: want N/SECS with N 1-1000000 and "
			   "SECS 1-86400, as in 20/1");
	r->rate_n = (unsigned)n;
	r->rate_secs = (unsigned)secs;
	return 0;
}

/* One of acceptd's own instructions, or 1 when name is a variable. */
static int own_item(struct rule *r, const char *name, char **pp, char *err, size_t errlen)
{
	bool msg = strcmp(name, "msg") == 0;
	char q = **pp, *v, num[32];
	unsigned long n;

	if (!msg && strcmp(name, "exec") && strcmp(name, "rate") &&
	    strcmp(name, "max-per-source"))
		return 1;
	if (msg != r->deny) {
		snprintf(err, errlen, "%s: only in %s rule", name,
			 msg ? "a deny" : "an allow");
		return -1;
	}
	if (name[0] != 'e' && !msg && **pp >= '0' && **pp <= '9') {
		/* A number needs no quotes: read as tcprules would (the
		 * first character the quote), max-per-source=525 would be 2. */
		size_t len = strcspn(*pp, ",");

		if (len >= sizeof num)
			return why(err, errlen, "a number too long");
		memcpy(num, *pp, len);
		num[len] = '\0';
		*pp += len;
		v = num;
	} else if (!(v = take_value(pp, msg, err, errlen))) {
		return -1;
	}
	if ((msg && r->msg) || (name[0] == 'e' && r->argv) ||
	    (name[0] == 'r' && r->rate_n) || (name[0] == 'm' && !msg && r->max_per_source)) {
		snprintf(err, errlen, "%s given twice", name);
		return -1;
	}
	if (msg) {
		r->msg = v;
		return unescape(v, q, &r->msg_len, err, errlen);
	}
	if (name[0] == 'e')
		return set_exec(r, v, err, errlen);
	if (name[0] == 'r')
		return set_rate(r, v, err, errlen);
	if (parse_num(v, strlen(v), RULES_LIMIT_MAX, &n) < 0 || n < 1)
		return why(err, errlen, "max-per-source: want a number 1-1000000");
	r->max_per_source = (unsigned)n;
	return 0;
}

/* What follows an item: the end (0), or ',' and another item (1). */
static int item_end(char *p, char **pp, char *err, size_t errlen)
{
	if (*p == '\0') {
		*pp = p;
		return 0;
	}
	if (*p != ',')
		return why(err, errlen, "expected ',' or the end after a value's "
			   "closing quote");
	*p++ = '\0';
	if (*p == '\0')
		return why(err, errlen, "nothing after ','");
	*pp = p;
	return 1;
}

/* ,NAME=QvalueQ / ,-NAME / acceptd's own, each in place; *pp is past the
 * ','.  Returns -1, or item_end's answer. */
static int parse_item(struct rule *r, char **pp, char *err, size_t errlen)
{
	char *p = *pp, *name = p, *v;
	size_t w = strcspn(p, "=,");
	int own;

	if (p[0] == '-' && p[w] != '=') {
		if (w == 1)
			return why(err, errlen, "',-' needs a NAME to unset");
		if (add_var(r, name + 1, NULL, err, errlen) < 0)
			return -1;
		return item_end(p + w, pp, err, errlen);
	}
	if (p[w] != '=')
		return why(err, errlen, "expected ,NAME=\"value\" (or ,-NAME)");
	if (w == 0)
		return why(err, errlen, "empty variable name");
	if (p[0] == '-')
		return why(err, errlen, "a NAME does not start with '-' "
			   "(,-NAME unsets NAME)");
	p[w] = '\0';
	*pp = p + w + 1;
	own = own_item(r, name, pp, err, errlen);
	if (own < 0)
		return -1;
	if (own == 1) {
		v = take_value(pp, false, err, errlen);
		if (!v || add_var(r, name, v, err, errlen) < 0)
			return -1;
	}
	return item_end(*pp, pp, err, errlen);
}

/* "allow" or "deny", then the items; line is the rule's own buffer. */
static int parse_instructions(struct rule *r, char *p, char *err, size_t errlen)
{
	int more;

	if (strncmp(p, "allow", 5) == 0) {
		p += 5;
	} else if (strncmp(p, "deny", 4) == 0) {
		r->deny = true;
		p += 4;
	} else {
		return why(err, errlen, "instructions start with allow or deny");
	}
	if (*p == '\0')
		return 0;
	if (*p == ' ' || *p == '\t')
		return why(err, errlen, "a blank after allow or deny (tcprules reads none)");
	if (*p != ',')
		return why(err, errlen, "expected ',' after allow or deny");
	p++;
	if (*p == '\0')
		return why(err, errlen, "nothing after ','");
	do
		more = parse_item(r, &p, err, errlen);
	while (more == 1);
	return more;
}

/* The ':' that ends the address: the first one followed by allow or deny. */
static char *find_colon(char *line)
{
	for (char *c = strchr(line, ':'); c; c = strchr(c + 1, ':'))
		if (strncmp(c + 1, "allow", 5) == 0 || strncmp(c + 1, "deny", 4) == 0)
			return c;
	return NULL;
}

static void free_rule(struct rule *r)
{
	if (!r)
		return;
	free(r->vars);
	free(r->argv);
	free(r->buf);
	free(r);
}

static int add_entry(struct rules *rs, const unsigned char *key, struct rule *r)
{
	if (rs->npend == RULES_ENTRIES_MAX)
		return 1;
	if (rs->npend == rs->cappend) {
		size_t cap = rs->cappend ? rs->cappend * 2 : 256;
		struct entry *e = realloc(rs->pend, cap * sizeof *e);

		if (!e)
			return -1;
		rs->pend = e;
		rs->cappend = cap;
	}
	memcpy(rs->pend[rs->npend].key, key, TABLE_KEY_MAX);
	rs->pend[rs->npend++].rule = r;
	return 0;
}

/* The rule's network for whoever reads it, and its entries (one per
 * address of a range).  -1 out of memory, 1 too many entries. */
static int add_target(struct rules *rs, const struct target *t, struct rule *r)
{
	unsigned char key[TABLE_KEY_MAX];
	unsigned lo = t->range_at >= 0 ? t->lo : 0, hi = t->range_at >= 0 ? t->hi : 0;

	r->range_last = t->range_at >= 0 ? (int)t->hi : -1;
	r->net.family = t->kind == KEY_V4 ? AF_INET : t->kind == KEY_V6 ? AF_INET6 :
			t->kind ? AF_UNIX : AF_UNSPEC;
	r->net.prefix = t->kind == KEY_UID ? CIDR_UID : t->kind == KEY_GID ? CIDR_GID :
			t->len;
	memcpy(r->net.addr, t->addr, 16);
	if (t->kind == 0) {
		if (!rs->def)
			rs->def = r;
		return 0;
	}
	if (t->kind == KEY_V4)
		set_used(rs->used, t->len);
	else if (t->kind == KEY_V6)
		set_used(rs->used6, t->len);
	for (unsigned v = lo; v <= hi; v++) {
		memset(key, 0, sizeof key);
		key[0] = (unsigned char)t->kind;
		key[1] = (unsigned char)t->len;
		memcpy(key + 2, t->addr, 16);
		if (t->range_at >= 0)
			key[2 + t->range_at] = (unsigned char)v;
		int e = add_entry(rs, key, r);

		if (e)
			return e;
	}
	return 0;
}

static int keep_rule(struct rules *rs, struct rule *r)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct rule **a = realloc(rs->all, cap * sizeof *a);

		if (!a)
			return -1;
		rs->all = a;
		rs->cap = cap;
	}
	rs->all[rs->n++] = r;
	return 0;
}

/* One line (NUL-terminated, without its newline) that is not blank or a
 * comment: a rule, or -1 with the reason. */
static int parse_rule(struct rules *rs, const char *s, size_t n, unsigned line,
		      char *err, size_t errlen)
{
	struct rule *r = calloc(1, sizeof *r);
	struct target t;
	char *colon;

	if (!r || !(r->buf = malloc(n + 1))) {
		free(r);
		return why(err, errlen, "out of memory");
	}
	memcpy(r->buf, s, n);
	r->buf[n] = '\0';
	r->line = line;
	if (keep_rule(rs, r) < 0) {
		free_rule(r);
		return why(err, errlen, "out of memory");
	}
	colon = find_colon(r->buf);
	if (!colon)
		return why(err, errlen, "expected ADDRESS:allow or ADDRESS:deny");
	*colon = '\0';
	if (parse_target(r->buf, &t, err, errlen) < 0 ||
	    parse_instructions(r, colon + 1, err, errlen) < 0)
		return -1;
	switch (add_target(rs, &t, r)) {
	case 0:
		return 0;
	case 1:
		return why(err, errlen, "more than 2,000,000 addresses and networks "
			   "(each address of a range counts)");
	default:
		return why(err, errlen, "out of memory");
	}
}

/* Where a key's bit is in rs->hint.  Most probes of a lookup are misses
 * (a client no rule of that length covers); the bit answers most of them
 * with one memory read instead of a SipHash and a table probe.  A set bit
 * is only "maybe": the probe decides. */
static size_t hint_at(const unsigned char *key)
{
	uint32_t h = ((uint32_t)key[0] * 131u + key[1]) * 2654435761u ^
		     ((uint32_t)key[2] << 8 | key[3]) * 2246822519u;

	return h >> (32 - HINT_BITS);
}

static int build_table(struct rules *rs)
{
	rs->t = table_new(rs->npend, sizeof(struct rule *));
	rs->hint = calloc((size_t)1 << HINT_BITS >> 3, 1);
	if (!rs->t || !rs->hint)
		return -1;
	for (size_t i = 0; i < rs->npend; i++) {
		struct rule **slot = table_put(rs->t, rs->pend[i].key);
		size_t bit = hint_at(rs->pend[i].key);

		rs->hint[bit >> 3] |= (uint8_t)(1u << (bit & 7));
		if (!slot)
			return -1;
		if (!*slot)	/* the first rule for a network wins */
			*slot = rs->pend[i].rule;
	}
	free(rs->pend);
	rs->pend = NULL;
	rs->npend = rs->cappend = 0;
	return 0;
}

/* A line is blank (spaces and tabs only) or a comment ('#' first, after
 * blanks): nothing to compile. */
static bool skip_line(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i == n || s[i] == '#';
}

struct rules *rules_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct rules *rs = calloc(1, sizeof *rs);
	unsigned line = 0;
	char why_[256];

	if (!rs) {
		why(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t at = 0; at < len; line++) {
		const char *s = text + at, *nl = memchr(s, '\n', len - at);
		size_t n = nl ? (size_t)(nl - s) : len - at;

		at += n + 1;
		if (n && s[n - 1] == '\r')
			n--;
		if (memchr(s, '\0', n)) {
			snprintf(err, errlen, "%u: a NUL byte", line + 1);
			goto fail;
		}
		if (skip_line(s, n))
			continue;
		if (parse_rule(rs, s, n, line + 1, why_, sizeof why_) < 0) {
			snprintf(err, errlen, "%u: %s", line + 1, why_);
			goto fail;
		}
	}
	if (build_table(rs) < 0) {
		why(err, errlen, "out of memory");
		goto fail;
	}
	return rs;
fail:
	rules_free(rs);
	return NULL;
}

static const struct rule *probe(const struct rules *rs, int kind, unsigned len,
				const uint8_t *addr, unsigned nbytes)
{
	unsigned char key[TABLE_KEY_MAX];
	struct rule **slot;

	memset(key, 0, sizeof key);
	key[0] = (unsigned char)kind;
	key[1] = (unsigned char)len;
	memcpy(key + 2, addr, nbytes);
	if (kind == KEY_V4 || kind == KEY_V6) {	/* the host bits go */
		if (len % 8)
			key[2 + len / 8] &= (unsigned char)(0xff00u >> (len % 8));
		memset(key + 2 + (len + 7) / 8, 0, 16 - (len + 7) / 8);
	}
	if (!(rs->hint[hint_at(key) >> 3] & (1u << (hint_at(key) & 7))))
		return NULL;
	slot = table_get(rs->t, key);
	return slot ? *slot : NULL;
}

/* The longest used prefix first: at most 33 or 129 probes. */
static const struct rule *match_ip(const struct rules *rs, const struct peer *p)
{
	bool v4 = p->family == AF_INET;
	const uint64_t *used = v4 ? rs->used : rs->used6;
	int kind = v4 ? KEY_V4 : KEY_V6;

	for (int len = v4 ? 32 : 128; len >= 0; len--) {
		const struct rule *r;

		if (!is_used(used, (unsigned)len))
			continue;
		r = probe(rs, kind, (unsigned)len, p->raw, v4 ? 4 : 16);
		if (r)
			return r;
	}
	return NULL;
}

const struct rule *rules_match(const struct rules *rs, const struct peer *p, uint32_t gid)
{
	const struct rule *r = NULL;

	if (p->family == AF_INET || p->family == AF_INET6) {
		r = match_ip(rs, p);
	} else if (p->family == AF_UNIX) {
		r = probe(rs, KEY_UID, 0, p->raw, 4);
		if (!r)
			r = probe(rs, KEY_GID, 0, (const uint8_t *)&gid, 4);
	}
	return r ? r : rs->def;
}

size_t rules_count(const struct rules *rs)
{
	return rs->n;
}

/* The i-th rule of the file (i < rules_count), for listing and tests. */
const struct rule *rules_at(const struct rules *rs, size_t i)
{
	return i < rs->n ? rs->all[i] : NULL;
}

void rules_free(struct rules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		free_rule(rs->all[i]);
	free(rs->all);
	free(rs->pend);
	table_free(rs->t);
	free(rs->hint);
	free(rs);
}
