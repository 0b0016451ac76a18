/*
 * rules-lookup.c - what one --rules lookup costs (bench/rules): the file
 * compiled by rules_parse, then rules_match for one address, N times.
 * Linked against the build's libacceptd-core.a.
 *
 *   rules-lookup FILE ADDRESS [N]
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"

static double seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const struct rule *m = NULL;
	struct peer p;
	struct rules *r;
	char err[256], *text;
	long len, n = argc > 3 ? atol(argv[3]) : 2000000;
	double t0, t1;
	FILE *f;

	if (argc < 3 || !(f = fopen(argv[1], "r")))
		return fprintf(stderr, "usage: rules-lookup FILE ADDRESS [N]\n"), 2;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = malloc((size_t)len + 1);
	if (!text || fread(text, 1, (size_t)len, f) != (size_t)len)
		return 1;
	fclose(f);
	t0 = seconds();
	r = rules_parse(text, (size_t)len, err, sizeof err);
	t1 = seconds();
	if (!r)
		return fprintf(stderr, "%s: %s\n", argv[1], err), 1;
	memset(&p, 0, sizeof p);
	p.family = strchr(argv[2], ':') ? AF_INET6 : AF_INET;
	if (inet_pton(p.family, argv[2], p.raw) != 1)
		return fprintf(stderr, "%s: not an address\n", argv[2]), 2;
	printf("compile: %.0f ms for %zu rules\n", (t1 - t0) * 1e3, rules_count(r));
	t0 = seconds();
	for (long i = 0; i < n; i++)
		m = rules_match(r, &p, 0);
	t1 = seconds();
	printf("lookup of %s: %.0f ns (matches line %u)\n", argv[2], (t1 - t0) / (double)n * 1e9,
	       m ? m->line : 0);
	rules_free(r);
	free(text);
	return 0;
}
