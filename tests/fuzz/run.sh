#!/bin/sh
# run.sh [SECONDS] - build every libFuzzer target in tests/fuzz and run each
# for SECONDS (default 20) on a copy of its seed corpus.
#
# Everything goes under $FUZZ_BUILD (default: build/fuzz in the source
# tree, found from this script's own place, so it runs from anywhere); the
# repository is never written.  No configured tree is needed: the pure
# sources only want a config.h, made here.  Prints one line per target, then
# "fuzz: N passed, N failed" (one result a target), and exits 1 if a target
# failed to build or found a crash, 77 when clang or libFuzzer is missing.
set -u

secs=${1:-20}
case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD:-$top/build/fuzz}
cc=${FUZZ_CC:-clang}
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=gnu11 -Wall -Wextra"

# The sources each target links, beyond its own fuzz_NAME.c.  addr.c takes
# options_parse_uint from options.c, which in turn names builtin_lookup and
# cidr_parse and contain_parse_rlimit, and log_escape from log.c; a new
# "undefined reference" means a file to add here.
addr_srcs="src/addr.c src/options.c src/config.c src/confline.c src/builtin.c src/cidr.c src/log.c src/contain.c src/cgroup.c"
srcs_of() {
	case $1 in
	cidr) echo "src/cidr.c" ;;
	addr) echo "$addr_srcs" ;;
	confline) echo "src/confline.c" ;;
	proxy) echo "src/proxy.c $addr_srcs" ;;
	rules) echo "src/rules.c src/cidr.c src/confline.c src/table.c" ;;
	*) echo "run.sh: no source list for target '$1'" >&2; return 1 ;;
	esac
}
targets="cidr addr confline proxy rules"

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "fuzz: $cc not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
	exit 77
fi
mkdir -p "$build" || exit 1
build=$(cd "$build" && pwd)

# libFuzzer comes separately from clang on Debian: probe for it.
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	>"$build/probe.c"
# shellcheck disable=SC2086 # $cflags is a list of flags
if ! $cc $cflags "$build/probe.c" -o "$build/probe" >"$build/probe.log" 2>&1; then
	echo "fuzz: $cc cannot build libFuzzer targets (Debian: apt-get install libclang-rt-14-dev); see $build/probe.log" >&2
	exit 77
fi

# What the sources use from config.h, the version taken from configure.ac.
version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$top/configure.ac" 2>/dev/null)
cat >"$build/config.h" <<EOF
/* config.h - made by tests/fuzz/run.sh for the fuzz build only. */
#define PACKAGE "acceptd"
#define PACKAGE_NAME "acceptd"
#define PACKAGE_VERSION "${version:-fuzz}"
#define SD_DAEMON_IMPL "built-in"
#ifndef _GNU_SOURCE
# define _GNU_SOURCE 1
#endif
EOF

# Builds fuzz_$1; prints why not and returns 1 on failure.
build_target() {
	t=$1
	list=$(srcs_of "$t") || return 1
	files="$here/fuzz_$t.c"
	for s in $list; do
		files="$files $top/$s"
	done
	for f in $files; do
		if [ ! -f "$f" ]; then
			echo "fuzz $t: FAILED to build: ${f#"$top"/} does not exist"
			return 1
		fi
	done
	# shellcheck disable=SC2086 # word splitting of the lists is intended
	if ! $cc $cflags -I"$build" -I"$top/src" $files -o "$build/fuzz_$t" \
		>"$build/fuzz_$t.build.log" 2>&1; then
		echo "fuzz $t: FAILED to build; see $build/fuzz_$t.build.log"
		grep -E 'error|undefined reference' "$build/fuzz_$t.build.log" |
			head -n 5 | sed 's/^/    /'
		return 1
	fi
}

# Runs fuzz_$1 on a fresh copy of its seeds; prints the one line.
run_target() {
	t=$1
	corpus="$build/corpus/$t"
	art="$build/artifacts/$t"
	log="$build/fuzz_$t.log"
	rm -rf "$corpus" && mkdir -p "$corpus" "$art" || return 1
	if [ -d "$here/corpus/$t" ]; then
		cp -R "$here/corpus/$t/." "$corpus/" || return 1
	fi
	(cd "$build" && UBSAN_OPTIONS=print_stacktrace=1 "./fuzz_$t" \
		-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" "$corpus") >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz $t: ${runs:-?} runs, OK"
		return 0
	fi
	# libFuzzer names the input after what it did: crash-, leak-, timeout-, oom-
	crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	kind="exit $rc"
	[ -n "$crash" ] && kind=$(basename "$crash" | sed 's/-.*//')
	why=$(grep -m 1 -E '^SUMMARY|^==[0-9]+==ERROR|^fuzz_[a-z]+: ' "$log")
	echo "fuzz $t: FAILED ($kind) after ${runs:-?} runs: ${why:-see log}"
	echo "    crash file: ${crash:-none}; log: $log"
	if [ -n "$crash" ]; then
		echo "    reproduce: $build/fuzz_$t $crash"
	fi
	return 1
}

ok=0 bad=0
for t in $targets; do
	if build_target "$t" && run_target "$t"; then
		ok=$((ok + 1))
	else
		bad=$((bad + 1))
	fi
done
echo "fuzz: $ok passed, $bad failed"
[ "$bad" = 0 ]
