/*
 * admit.c - whether a connection may reach a handler: the ACL or its
 * --rules rule, then its source's --rate and -C (source.c; a rule may set
 * the client's own), in that order; and the one way a
 * connection is refused, here and in the PROXY reader.
 *
 * The order is the cheapest and most final first: a denied address never
 * costs a rate token, and a connection over the rate never counts as open.
 * Every refusal closes the connection at once and is logged, but through a
 * limiter per reason, so a flood costs a few lines a second, not a disk.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

/* The index of the first rule that matches p, or -1 (allowed). */
int admit_acl_match(const struct acl_rule *rules, unsigned n, const struct peer *p)
{
	for (unsigned i = 0; i < n; i++)
		if (cidr_match(&rules[i].net, p))
			return (int)i;
	return -1;
}

/* Closes c, counts it as refused and says why through lim - with the
 * first bytes the peer sent (escaped) when got is given. */
void admit_refuse(struct server *s, struct conn_info *c, struct log_limit *lim,
		  const char *why, const unsigned char *got, size_t n)
{
	char who[ADDR_STRLEN], esc[4 * 32 + 1];

	s->refused++;
	if (log_limited(lim)) {
		addr_peer_format(&c->remote, who, sizeof who);
		if (got) {
			log_escape(esc, sizeof esc, got, n < 32 ? n : 32);
			log_notice("%s: %s (got \"%s\"%s); closed", who, why, esc,
				   n > 32 ? "..." : "");
		} else {
			log_notice("%s: %s; %s", who, why, c->dgram ? "datagram dropped" : "closed");
		}
	}
	if (c->dgram)
		(void)recv(c->fd, NULL, 0, MSG_DONTWAIT);	/* read, dropped */
	else
		close(c->fd);
	c->fd = -1;
}

/* A refused client may be told why (--refusal-message, a deny rule's
 * msg): one non-blocking send, best effort - a client that does not read
 * loses it, never the loop its time. */
static void tell(const struct conn_info *c, const char *msg, size_t len)
{
	/* Never to a datagram's source: it may be forged, and the answer
	 * would go to whoever it names (reflection). */
	if (msg && !c->dgram)
		(void)send(c->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* The policy's word on a source, for connections and for the datagrams
 * a built-in answers (wdgram.c) alike: its --rules rule, or the ACL.
 * NULL when admitted, with *rule the rule that matched (NULL none); else
 * why not, written into why, with *rule the denying rule (its msg). */
const char *admit_policy(const struct server *s, const struct peer *p, uint32_t gid,
			 const struct rule **rule, char *why, size_t whylen)
{
	const struct options *o = s->opt;
	int i;

	*rule = NULL;
	if (s->rules) {	/* options.c: never with an ACL */
		*rule = rules_match(s->rules, p, gid);
		if (!*rule || !(*rule)->deny)
			return NULL;
		snprintf(why, whylen, "denied by --rules %.100s:%u", o->rules, (*rule)->line);
		return why;
	}
	i = o->n_acl ? admit_acl_match(o->acl, o->n_acl, p) : -1;
	if (i < 0 || o->acl[i].allow)
		return NULL;
	snprintf(why, whylen, "denied by --deny ");
	cidr_format(&o->acl[i].net, why + strlen(why), whylen - strlen(why));
	return why;
}

/* Decides for a described connection.  Admitted: true, the connection
 * counts against its source (c->connnum set).  Refused: false, the
 * connection is closed, counted and logged. */
bool admit_conn(struct server *s, struct conn_info *c)
{
	static struct log_limit denied = { .what = "denied connections" };
	static struct log_limit rated = { .what = "connections over --rate" };
	static struct log_limit capped = { .what = "connections over --max-per-source" };
	const struct options *o = s->opt;
	unsigned rate_n = o->rate_n, rate_secs = o->rate_secs, cap = o->max_per_source;
	char why[160];

	if (admit_policy(s, &c->remote, (uint32_t)c->gid, &c->rule, why, sizeof why)) {
		if (c->rule)
			tell(c, c->rule->msg, c->rule->msg_len);
		admit_refuse(s, c, &denied, why, NULL, 0);
		return false;
	}
	/* The client's own limits, where its rule gives them. */
	if (c->rule && c->rule->rate_n)
		rate_n = c->rule->rate_n, rate_secs = c->rule->rate_secs;
	if (c->rule && c->rule->max_per_source)
		cap = c->rule->max_per_source;
	if (rate_n && !source_rate_ok(s, &c->remote, rate_n, rate_secs)) {
		snprintf(why, sizeof why, "over --rate %u/%u", rate_n, rate_secs);
		tell(c, o->refusal_message, o->refusal_message_len);
		admit_refuse(s, c, &rated, why, NULL, 0);
		return false;
	}
	c->connnum = source_acquire(s, &c->remote);
	if (cap && c->connnum > cap) {
		source_release(s, &c->remote);
		snprintf(why, sizeof why, "source already holds --max-per-source %u", cap);
		tell(c, o->refusal_message, o->refusal_message_len);
		admit_refuse(s, c, &capped, why, NULL, 0);
		return false;
	}
	return true;
}
