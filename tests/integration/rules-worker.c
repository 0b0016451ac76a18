/*
 * rules-worker.c - a persistent acceptd worker in C for rules.py: for
 * each connection it writes what libacceptd says about the variables a
 * --rules rule added, then closes it:
 *   env NAME=value / env NAME      each acceptd_conn_env(), in order
 *   getenv NAME=value / getenv NAME unset   acceptd_conn_getenv() for
 *                                  each NAME given as an argument
 *   end
 */
#include <acceptd.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	acceptd_worker *w = acceptd_worker_open(1);
	struct acceptd_conn c;

	if (!w) {
		perror("rules-worker: acceptd_worker_open");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	while (acceptd_accept(w, &c, 0) == 1) {
		FILE *f = fdopen(c.fd, "w");
		const char *v;

		if (!f) {
			close(c.fd);
			acceptd_done(w, &c);
			continue;
		}
		for (unsigned i = 0; (v = acceptd_conn_env(w, &c, i)) != NULL; i++)
			fprintf(f, "env %s\n", v);
		for (int i = 1; i < argc; i++) {
			v = acceptd_conn_getenv(w, &c, argv[i]);
			if (v)
				fprintf(f, "getenv %s=%s\n", argv[i], v);
			else
				fprintf(f, "getenv %s unset\n", argv[i]);
		}
		fprintf(f, "end\n");
		fclose(f);	/* closes c.fd */
		acceptd_done(w, &c);
	}
	acceptd_worker_close(w);
	return 0;
}
