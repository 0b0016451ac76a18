#!/usr/bin/env bash
# dev.sh - the two things a newcomer (and CI) does with a fresh checkout.
#
#   tests/dev.sh run [ACCEPTD ARGS...]   install build deps if missing, build,
#                                        run acceptd in the foreground
#   tests/dev.sh check                   install test deps if missing, then build
#                                        and test every configuration CI tests:
#                                        libsystemd (plus make check-long and
#                                        the master under valgrind),
#                                        --without-systemd, ASan+UBSan, a short
#                                        libFuzzer run of each parser
#                                        (FUZZ_SECS, default 30), make
#                                        distcheck, make install's layout, and
#                                        the .deb/.rpm packaging from the
#                                        tarball (lintian)
#
# Debian 12 is the reference system; packages come from apt.  Builds go to
# build/<variant>/ in the source tree, so reruns are incremental.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

BUILD_PKGS=(build-essential autoconf automake libtool pkg-config libsystemd-dev)
TEST_PKGS=(check python3 socat xinetd systemd iproute2 procps ucspi-tcp-ipv6
	clang libclang-rt-14-dev haproxy strace debhelper dpkg-dev fakeroot lintian rpm valgrind)

need_pkgs() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	echo "dev.sh: installing ${missing[*]}" >&2
	local sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

bootstrap() {
	[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] ||
		autoreconf -fi >/dev/null
}

# build VARIANT [configure args...]: configure once, then make.
build() {
	local v=$1; shift
	mkdir -p "build/$v"
	(cd "build/$v" && { [ -f Makefile ] || "$top/configure" -q "$@"; } && make -j"$(nproc)" -s)
}

# Runs `make check` in build/VARIANT; keeps going so every variant reports.
check_variant() {
	local v=$1 rc=0
	echo "=== $v: make check" >&2
	(cd "build/$v" && make -s check) || rc=$?
	results+=("build/$v/test-suite.log")
	return $rc
}

count() {
	# automake's test-suite.log headers: "# PASS:  N" etc.
	local what=$1 n=0 f v
	for f in "${results[@]}"; do
		[ -f "$f" ] || continue
		v=$(sed -n "s/^# $what: *\([0-9]*\).*/\1/p" "$f" | head -n1)
		n=$((n + ${v:-0}))
	done
	echo "$n"
}

cmd=${1:-}
shift || true
case "$cmd" in
run)
	need_pkgs "${BUILD_PKGS[@]}"
	bootstrap
	build default
	exec build/default/src/acceptd "$@"
	;;
check)
	need_pkgs "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
	bootstrap
	results=()
	failed=0
	san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g -O1"
	build default --enable-werror
	check_variant default || failed=1
	echo "=== default: make check-long (minutes), then tests/valgrind.sh" >&2
	(cd build/default && make -s check-long) || failed=1
	results+=("build/default/test-suite-long.log")
	tests/valgrind.sh build/default || failed=1
	build nosystemd --enable-werror --without-systemd
	check_variant nosystemd || failed=1
	build asan --enable-werror CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		check_variant asan || failed=1
	echo "=== fuzz: ${FUZZ_SECS:-30} s per target" >&2
	fuzz_failed=0
	FUZZ_BUILD="$top/build/fuzz" tests/fuzz/run.sh "${FUZZ_SECS:-30}" >&2 || fuzz_failed=1
	echo "=== default: make distcheck" >&2
	if ! (cd build/default && make -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror >/dev/null); then
		echo "dev.sh: make distcheck failed" >&2
		failed=1
	fi
	tests/install-check.sh build/default >&2 || { echo "dev.sh: install check failed" >&2; failed=1; }
	tests/package/deb.sh build/default/acceptd-*.tar.xz || { echo "dev.sh: package check failed" >&2; failed=1; }
	for f in "${results[@]}"; do
		grep -E '^(FAIL|ERROR|XPASS)' "$f" 2>/dev/null | sed "s|^|$f: |" >&2 || true
	done
	p=$(count PASS) fl=$(($(count FAIL) + $(count ERROR) + $(count XPASS) + fuzz_failed))
	sk=$(count SKIP)
	echo "dev.sh: ${#results[@]} configurations: $p passed, $fl failed, $sk skipped" >&2
	echo "$p passed, $fl failed, $sk skipped"
	exit $((failed || fl > 0))
	;;
*)
	echo "usage: tests/dev.sh run [ACCEPTD ARGS...] | tests/dev.sh check" >&2
	exit 2
	;;
esac
