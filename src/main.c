/*
 * main.c - wires the modules together and nothing else.
 *
 * Order matters: fds 0-2 are secured and every inherited fd above them
 * made close-on-exec before any other fd exists; options
 * are checked before any socket is touched (usage errors exit 2); the
 * --rules file is read, and the users and groups named by --user,
 * --socket-user and --socket-group looked up, before any socket exists
 * (broken or unknown: exit 2); the listeners are
 * acquired, then privileges dropped, before the loop starts and before
 * any handler or worker exists (failures exit 1).
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core.h"

extern char **environ;

static int prepare_handler(struct server *s, char *path, size_t pathlen)
{
	if (s->opt->program) {
		if (spawn_resolve(s->opt->program[0], path, pathlen) < 0) {
			log_err("PROGRAM '%s': not found or not executable", s->opt->program[0]);
			return 2;
		}
		s->program_path = path;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct options opt;
	static struct server srv;
	static char path[PATH_MAX];
	static struct privs privs;
	char err[512];
	int r;

	listen_fix_stdio();
	listen_seal_inherited();
	reload_init(argc, argv);
	options_defaults(&opt);
	r = options_parse(&opt, argc, argv, err, sizeof err);
	log_init(opt.verbosity);
	if (r == OPT_EXIT_OK)
		return 0;
	if (r == OPT_USAGE) {
		log_err("%s", err);
		return 2;
	}
	srv.opt = &opt;
	if ((r = prepare_handler(&srv, path, sizeof path)) != 0)
		return r;
	if (opt.rules && !(srv.rules = rulesfile_load(&opt, err, sizeof err))) {
		log_err("%s", err);
		return 2;
	}
	if ((opt.user && privs_resolve(opt.user, &privs, err, sizeof err) < 0) ||
	    privs_socket_owner(&opt, err, sizeof err) < 0) {
		log_err("%s", err);
		return 2;
	}
	srv.sigfd = signals_init(&srv.sigs_ignored);
	if (srv.sigfd < 0 || server_init(&srv, &opt) < 0) {
		log_err("cannot set up the event loop");
		return 1;
	}
	if (listen_acquire(&srv, err, sizeof err) < 0) {
		log_err("%s", err);
		return 1;
	}
	reload_restore(&srv);	/* after a SIGHUP: what the old image handed over */
	/* Moving into a cgroup of our own, and giving it to -u's user,
	 * takes the privileges we start with. */
	if (cgroup_setup(&opt, &privs, reload_restored(), err, sizeof err) < 0) {
		log_err("%s", err);
		listen_close_owned(&srv);
		return 1;
	}
	if (privs_drop(&privs, opt.user, reload_restored(), err, sizeof err) < 0) {
		log_err("%s", err);
		listen_close_owned(&srv);
		return 1;
	}
	if (contain_check(&opt, err, sizeof err) < 0) {
		log_err("%s", err);
		listen_close_owned(&srv);
		return 1;
	}
	config_check_after_drop(&opt);
	rulesfile_check_after_drop(&opt);
	srv.base_env = spawn_base_env(environ);
	if (!srv.base_env) {
		log_err("out of memory");
		return 1;
	}
	return server_run(&srv);
}
