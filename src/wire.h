/*
 * wire.h - the worker protocol's messages (acceptd-workers(7)), shared by
 * the daemon and libacceptd.  Pure: no I/O here; fdpass.c moves them.
 */
#ifndef ACCEPTD_WIRE_H
#define ACCEPTD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_MSG_MAX 4096
/* What one --rules rule's variables may take in a CONN, encoded
 * (rulesfile.c refuses more): the rest of WIRE_MSG_MAX is for the
 * connection's own keys (under 1100 bytes) and its PROXY TLVs. */
#define RULES_WIRE_ENV_MAX 2048

enum wire_verb { WIRE_UNKNOWN, WIRE_HELLO, WIRE_CONN, WIRE_DONE, WIRE_STOP };

/* What a CONN message says about one connection. */
struct wire_conn {
	uint64_t id;
	bool unix_peer;
	char local_ip[64];
	unsigned local_port;
	char remote_ip[64];
	unsigned remote_port;
	unsigned uid, gid;
	int pid;
	unsigned connnum;
	char listener[256];
	/* Variables beyond the keys above (a --rules rule's, PROXY TLVs'):
	 * "NAME=value" to set, "NAME" alone to unset, each NUL-terminated,
	 * back to back; env_len bytes.  CONN words env=NAME=VALUE and
	 * unenv=NAME, in this order. */
	size_t env_len;
	char env[WIRE_MSG_MAX];
};

enum wire_verb wire_verb(const char *buf, size_t len);
int wire_format_hello(char *buf, size_t len, unsigned version, unsigned max);
int wire_parse_hello(const char *buf, size_t len, unsigned *version, unsigned *max);
int wire_format_conn(char *buf, size_t len, const struct wire_conn *c);
int wire_parse_conn(const char *buf, size_t len, struct wire_conn *c);
int wire_format_done(char *buf, size_t len, const uint64_t *ids, size_t n);
int wire_parse_done(const char *buf, size_t len, void (*fn)(uint64_t id, void *arg),
		    void *arg);

#endif
