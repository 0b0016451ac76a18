#!/usr/bin/env bash
# valgrind.sh BUILDDIR - a short subset of the integration tests with the
# acceptd master under valgrind's memcheck.  Fails when any test case fails,
# or when memcheck reports any error, or a definite or indirect leak, in a
# master.
#
# How: ACCEPTD points at a wrapper that runs the real binary (BUILDDIR's
# src/acceptd must be an ELF file, not a libtool wrapper script; else the
# wrapper goes through `libtool --mode=execute`) as
#   valgrind --tool=memcheck --leak-check=full
#     --errors-for-leak-kinds=definite,indirect --error-exitcode=99
#     --trace-children=yes --trace-children-skip=<everything but acceptd>
#     --child-silent-after-fork=yes --track-fds=no --log-file=FIFO
# What is checked, and what is not:
#   * the master, from start to exit; a test that asserts exit status 0
#     sees 99 on any error;
#   * through a reload: SIGHUP re-executes acceptd (/proc/self/exe, which
#     valgrind reports as the real binary), and --trace-children=yes
#     follows that exec, so the new image runs under memcheck too.  The
#     skip list keeps every other exec (handlers, persistent workers,
#     scripts) out of valgrind.  The log goes to a FIFO per master, which
#     each image opens anew and a reader appends to vg.PID.log: a plain
#     --log-file would be truncated by the new image's memcheck, errors
#     and all, and an inherited --log-fd does not survive the exec (acceptd
#     makes every inherited fd close-on-exec at start).  The readers are
#     ended by their process group after the tests.  The leak check runs
#     in the last image only (an exec drops the old heap; nothing leaks
#     across it);
#   * not the built-in workers: they are forked (no exec), so they do run
#     under memcheck, but --child-silent-after-fork=yes silences them, and
#     their exit status is theirs; the same for the vfork child of a
#     handler between fork and exec;
#   * not handlers or persistent workers (exec'd: skipped).
# Under valgrind vfork is a plain fork, so the handler start path differs
# from the native one in timing only.
#
# Exit: 0 clean, 1 a case failed or memcheck complained, 77 when valgrind is
# missing (tests/dev.sh installs it).  Logs: BUILDDIR/valgrind/.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: tests/valgrind.sh BUILDDIR}" && pwd)
real=$build/src/acceptd
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not installed" >&2; exit 77; }
[ -x "$real" ] || { echo "valgrind.sh: no $real: build first" >&2; exit 1; }
(cd "$build" && make -s contrib/workers/echo-worker >/dev/null)

out=$build/valgrind
# The log readers the wrapper starts, each in a session of its own.
kill_readers() {
	local r
	for r in "$out"/vg.*.reader; do
		[ -e "$r" ] || continue
		# SIGKILL: a reader may have inherited SIGTERM ignored (the tests
		# start some masters with odd signal states); it is idle by now.
		kill -KILL -- "-$(cat "$r")" 2>/dev/null || true
		rm -f "$r"
	done
}
trap kill_readers EXIT
rm -rf "$out"
mkdir -p "$out/tmp"
launch=()
if [ "$(head -c 4 "$real")" != $'\x7fELF' ]; then
	launch=("$build/libtool" --mode=execute)	# a libtool wrapper script
fi
# Every exec but acceptd's own: system programs, any python (the tests'
# handlers; it may live outside /usr), the tests' helper and temporary
# scripts (TMPDIR is ours), the example workers (and their libtool wrapper).
skip="/bin/*,/usr/*,/sbin/*,/lib/*,/lib64/*,/etc/*,*python*,$top/tests/*,$out/tmp/*"
skip="$skip,*/contrib/workers/*"
{
	echo '#!/bin/bash'
	echo "# valgrind.sh: the acceptd master under memcheck; its log: $out/vg.<pid>.log"
	echo "out=$(printf %q "$out")"
	echo 'mkfifo "$out/vg.$$.fifo" || exit 1'
	echo '# The reader reopens the FIFO after each image closes it (at an exec),'
	echo '# in a session of its own that valgrind.sh ends after the tests.'
	echo '# Started from a subshell that exits at once, so that it is no child of'
	echo '# acceptd (which this shell becomes) and holds none of its stdio.'
	echo '(setsid bash -c '"'"'while :; do cat "$0"; done >>"$1"'"'"' "$out/vg.$$.fifo" "$out/vg.$$.log" \'
	echo '	</dev/null >/dev/null 2>&1 & echo $! >"$out/vg.$$.reader")'
	printf 'exec'
	printf ' %q' "${launch[@]}" valgrind --tool=memcheck --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--trace-children=yes "--trace-children-skip=$skip" \
		--child-silent-after-fork=yes --track-fds=no
	echo ' --log-file="$out/vg.$$.fifo" '"$(printf %q "$real")"' "$@"'
} >"$out/acceptd"
chmod +x "$out/acceptd"

# The subset: FILE CASE,CASE...  Spawn mode, pool mode (built-in and
# persistent workers), reload (SIGHUP re-exec), --config, PROXY protocol,
# admission, the service manager protocol, usage and start-up errors.
# Cases with wall-clock bounds tighter than valgrind's pace are left out.
subset=(
	"standalone.py echo_ipv4,builtin_chargen,builtin_daytime,unix_listener_echo_and_cleanup,verbose_logs_each_connection,sigterm_exits_0_and_closes_port"
	"handler_env.py tcp_env_ipv4,unix_env,fds_only_connection_and_stderr,signal_state_clean_despite_inherited"
	"limits.py max_conns_waits_in_backlog,sigterm_drains_running_connection"
	"pool.py c_worker_first_line_and_echo,busy_worker_connections_wait_in_backlog,builtin_sigterm_finishes_connection"
	"reload.py same_pid_same_socket_handlers_still_counted,pool_workers_replaced_old_ones_finish,program_gone_keeps_the_old_image_serving,persistent_c_worker_replaced,notify_reloading_then_ready"
	"config.py serves_the_files_listens_and_exec_with_its_words,serves_a_builtin_from_a_crlf_file,bad_file_itself,reload_with_a_broken_file_keeps_serving,reload_changes_listen_addresses"
	"proxy.py v1_tcp4_sets_claimed_addresses,v2_inet_and_inet6_set_claimed_addresses,header_split_over_several_sends,bad_headers_closed_at_once_1,bad_headers_closed_at_once_2,pool_builtin_echo_strips_the_header,proxy_from_refuses_others_before_reading"
	"admission.py acl_first_match_wins_in_command_line_order,max_per_source_refuses_the_extra_connection_only,refusal_lines_are_limited_per_kind,bad_admission_options_exit_2_with_one_line,timeout_terminates_the_handlers_process_group"
	"lifecycle.py ready_means_every_listener_accepts,fdstore_every_own_listener_before_ready,status_counts_refused_failed_and_workers"
	"errors.py program_not_found,port_in_use,listen_fds_garbage_for_our_pid_ignored"
	"robustness.py thousand_resets_in_the_backlog_pool,thousand_resets_in_the_backlog_spawn,five_hundred_handlers_exit_at_once"
)

have_libsystemd=$(sed -n 's/^have_libsystemd = //p' "$build/Makefile")
# Counted for the closing line: cases passed, cases failed (plus one for
# each file that did not run what it was asked, and one for each master
# memcheck complains about), cases skipped.
failed=0 n_pass=0 n_fail=0 n_skip=0
for entry in "${subset[@]}"; do
	file=${entry%% *} cases=${entry#* }
	t0=$(date +%s)
	rc=0
	env ACCEPTD="$out/acceptd" ACCEPTD_CASES="$cases" ACCEPTD_CASE_TIMEOUT=240 \
		ACCEPTD_TESTLIB="$top/tests/integration" ACCEPTD_HAVE_LIBSYSTEMD="$have_libsystemd" \
		ACCEPTD_C_WORKER="$build/contrib/workers/echo-worker" \
		ACCEPTD_PY_WORKER="$top/contrib/workers/echo_worker.py" \
		TMPDIR="$out/tmp" \
		python3 "$top/tests/integration/$file" >"$out/${file%.py}.tap" 2>&1 || rc=$?
	ran=$(grep -c '^ok ' "$out/${file%.py}.tap" || true)
	skipped=$(grep -c '^ok .*# SKIP' "$out/${file%.py}.tap" || true)
	bad=$(grep -c '^not ok ' "$out/${file%.py}.tap" || true)
	echo "valgrind.sh: $file: $ran ok ($skipped skipped), $bad failed, $(($(date +%s) - t0)) s" >&2
	n_pass=$((n_pass + ran - skipped)) n_fail=$((n_fail + bad)) n_skip=$((n_skip + skipped))
	grep '# SKIP' "$out/${file%.py}.tap" | sed 's/^/    /' >&2 || true
	# A renamed case would silently drop out of ACCEPTD_CASES' selection.
	want=$(($(tr -cd , <<<"$cases" | wc -c) + 1))
	if ! grep -qx "1\.\.$want" "$out/${file%.py}.tap"; then
		echo "valgrind.sh: $file: not the $want cases asked for (renamed?): $cases" >&2
		failed=1 n_fail=$((n_fail + 1))
	elif [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		echo "valgrind.sh: $file: exit $rc" >&2
		failed=1 n_fail=$((n_fail + 1))
	fi
	if [ "$rc" != 0 ] || [ "$bad" != 0 ] || ! grep -q '^1\.\.' "$out/${file%.py}.tap"; then
		sed -n '/^not ok /,/^ok /p' "$out/${file%.py}.tap" | head -60 >&2 || true
		failed=1
	fi
done

# Every master has exited, so each reader has copied all of its FIFO and
# waits to open it again: end them now (on any exit too, see the trap).
kill_readers
rm -f "$out"/vg.*.fifo

# Memcheck's verdict, log by log (one per master; a reloaded master's
# images share one).  Errors are reported as they happen, so one found
# before a reload's exec is in the log even though that image never wrote
# a summary.
errors_rx='(Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|(definitely|indirectly) lost in loss record|Process terminating with|has a fishy|Invalid alignment|realloc\(\) with size 0|ERROR SUMMARY: [1-9])'
logs=0
for log in "$out"/vg.*.log; do
	[ -e "$log" ] || continue
	logs=$((logs + 1))
	if grep -Eq "^==[0-9]+== .*$errors_rx" "$log"; then
		echo "valgrind.sh: memcheck reports errors in $log:" >&2
		cat "$log" >&2
		failed=1 n_fail=$((n_fail + 1))
	elif ! grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
		# Killed (SIGKILL) before memcheck could check for leaks.
		echo "valgrind.sh: $log: no summary: that master did not exit by itself" >&2
		grep -h 'Command:' "$log" | head -1 >&2
		failed=1 n_fail=$((n_fail + 1))
	fi
done
if [ "$logs" = 0 ]; then
	echo "valgrind.sh: no valgrind log at all: was the master run under valgrind?" >&2
	failed=1 n_fail=$((n_fail + 1))
fi
echo "valgrind.sh: $logs acceptd masters under memcheck; $( ((failed)) && echo FAILED || echo clean)" >&2
((failed == 0 || n_fail > 0)) || n_fail=1
echo "valgrind: $n_pass passed, $n_fail failed, $n_skip skipped" >&2
exit "$failed"
