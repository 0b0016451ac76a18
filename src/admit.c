/*
 * admit.c - whether a connection may reach a handler: the ACL, then its
 * source's --rate and -C (source.c), in that order; and the one way a
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
			log_notice("%s: %s; closed", who, why);
		}
	}
	close(c->fd);
	c->fd = -1;
}

/* -C and --rate refusals may tell the client why (--refusal-message): one
 * non-blocking send, best effort - a client that does not read loses it,
 * never the loop its time. */
static void tell(const struct server *s, const struct conn_info *c)
{
	if (s->opt->refusal_message)
		(void)send(c->fd, s->opt->refusal_message, s->opt->refusal_message_len,
			   MSG_DONTWAIT | MSG_NOSIGNAL);
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
	char why[96];

	if (o->n_acl) {
		int i = admit_acl_match(o->acl, o->n_acl, &c->remote);

		if (i >= 0 && !o->acl[i].allow) {
			char rule[64];

			cidr_format(&o->acl[i].net, rule, sizeof rule);
			snprintf(why, sizeof why, "denied by --deny %s", rule);
			admit_refuse(s, c, &denied, why, NULL, 0);
			return false;
		}
	}
	if (o->rate_n && !source_rate_ok(s, &c->remote)) {
		snprintf(why, sizeof why, "over --rate %u/%u", o->rate_n, o->rate_secs);
		tell(s, c);
		admit_refuse(s, c, &rated, why, NULL, 0);
		return false;
	}
	c->connnum = source_acquire(s, &c->remote);
	if (o->max_per_source && c->connnum > o->max_per_source) {
		source_release(s, &c->remote);
		snprintf(why, sizeof why, "source already holds --max-per-source %u",
			 o->max_per_source);
		tell(s, c);
		admit_refuse(s, c, &capped, why, NULL, 0);
		return false;
	}
	return true;
}
