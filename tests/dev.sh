#!/usr/bin/env bash
# dev.sh - the two things a newcomer (and CI) does with a fresh checkout.
#
#   tests/dev.sh run [ACCEPTD ARGS...]   install build deps if missing, build,
#                                        run acceptd in the foreground
#   tests/dev.sh check                   install test deps if missing and fetch
#                                        the .debs some tests unpack, then build
#                                        and test every configuration CI tests:
#                                        libsystemd (plus make check-long and
#                                        the master under valgrind),
#                                        --without-systemd, ASan+UBSan, a short
#                                        libFuzzer run of each parser
#                                        (FUZZ_SECS, default 30), make
#                                        distcheck, make install's layout, the
#                                        .deb/.rpm packaging from the tarball
#                                        (lintian), and the system tier: those
#                                        .debs under a real systemd booted in a
#                                        container (tests/system/)
#
# Debian 12 is the reference system; packages come from apt, and nothing
# is downloaded once the tests start.  Builds go to build/<variant>/ in the
# source tree, so reruns are incremental.
#
# check's last line, on stdout, is "N passed, N failed, N skipped" over
# every stage: each test case of each variant, check-long and valgrind,
# one per fuzz target, one each for distcheck, the install check and
# the package check, and each case of the system tier (plus one for any
# build or stage that failed outside its counts).  The exit status is 1
# exactly when N failed is above 0.
# Skipped cases are listed by name just above it.  Under CI=true a skip
# not listed in tests/skips-allowed is a failure (acceptd_test.py).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

BUILD_PKGS=(build-essential autoconf automake libtool pkg-config libsystemd-dev)
TEST_PKGS=(check python3 socat xinetd systemd iproute2 procps ucspi-tcp-ipv6 curl
	clang libclang-rt-14-dev haproxy strace debhelper dpkg-dev fakeroot lintian rpm valgrind
	systemd-container)

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

# build VARIANT [configure args...]: configure once, then make.  A build
# directory configured with other arguments (by hand, or by an older
# dev.sh) is configured afresh: reusing it would test other flags than
# the ones this script names.
build() {
	local v=$1; shift
	local want="$*" had=
	[ -f "build/$v/.dev-configure-args" ] && had=$(cat "build/$v/.dev-configure-args")
	if [ -f "build/$v/Makefile" ] && { [ ! -f "build/$v/.dev-configure-args" ] || [ "$had" != "$want" ]; }; then
		echo "dev.sh: build/$v was configured with other arguments (${had:-unknown}); configuring it afresh" >&2
		rm -rf "build/$v"
	fi
	mkdir -p "build/$v"
	(cd "build/$v" && { [ -f Makefile ] || "$top/configure" -q "$@"; } &&
		printf '%s' "$want" >.dev-configure-args && make -j"$(nproc)" -s)
}

# --- check: every stage counted -------------------------------------------
# Each stage adds to passed/failed/skipped; the last line sums them all and
# the exit status agrees with it.  A stage whose command fails without a
# failure in its counts (a compile error before make check ran a test, a
# script that died) counts as one failure of its own.

passed=0 failed=0 skipped=0
failures=() skips=()

# tally NAME RC PASS FAIL SKIP
tally() {
	local name=$1 rc=$2 p=$3 f=$4 sk=$5
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + sk))
	((f == 0)) || failures+=("$name ($f)")
	echo "dev.sh: $name: $p passed, $f failed, $sk skipped" >&2
}

# stage NAME CMD...: a stage that is one result, or that ends its output
# with a line "... N passed, N failed[, N skipped]" (valgrind.sh, fuzz).
stage() {
	local name=$1 rc=0 log counts p f sk=0
	shift
	log=$(mktemp)
	echo "=== $name" >&2
	set +e
	"$@" 2>&1 | tee "$log" >&2
	rc=${PIPESTATUS[0]}
	set -e
	counts=$(grep -Eo '[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?' "$log" | tail -n 1) || true
	rm -f "$log"
	if [ -n "$counts" ]; then
		p=$(sed 's/ passed.*//' <<<"$counts")
		f=$(sed 's/.* passed, \([0-9]*\) failed.*/\1/' <<<"$counts")
		[[ $counts == *skipped ]] && sk=$(sed 's/.* failed, \([0-9]*\) skipped/\1/' <<<"$counts")
	elif [ "$rc" = 0 ]; then
		p=1 f=0
	else
		p=0 f=1
	fi
	tally "$name" "$rc" "$p" "$f" "$sk"
}

# suite NAME BUILD LOG [make args...]: `make check` (or check-long) in a
# build dir, counted from its test-suite log, which is removed first so an
# old one is never counted again.  Skipped cases are listed by name from
# the .trs files this run wrote.
suite() {
	local name=$1 b=$2 log=$2/$3 rc=0 stamp n what
	shift 3
	local -A c=()
	rm -f "$log"
	stamp=$(mktemp)
	echo "=== $name: make $*" >&2
	(cd "$b" && make -s "$@") >&2 || rc=$?
	for what in PASS FAIL ERROR XPASS XFAIL SKIP; do
		n=$(sed -n "s/^# $what: *\([0-9]*\).*/\1/p" "$log" 2>/dev/null | head -n1) || true
		c[$what]=${n:-0}
	done
	if [ ! -f "$log" ]; then
		echo "dev.sh: $name: no $log: make stopped before running the tests" >&2
	fi
	grep -E '^(FAIL|ERROR|XPASS)' "$log" 2>/dev/null | sed "s|^|$name: |" >&2 || true
	# The driver copies each result into the test's .log as "SKIP: FILE N -
	# CASE # SKIP REASON"; only logs this run wrote are read.
	while IFS= read -r line; do
		skips+=("$name: $line")
	done < <(find "$b" -name '*.log' -newer "$stamp" ! -name 'test-suite*.log' \
		-exec grep -h '^SKIP: ' {} + 2>/dev/null | sed 's/^SKIP: //' | sort)
	rm -f "$stamp"
	tally "$name" "$rc" "$((c[PASS] + c[XFAIL]))" "$((c[FAIL] + c[ERROR] + c[XPASS]))" "${c[SKIP]}"
}

cmd=${1:-}
shift || true
case "$cmd" in
run)
	need_pkgs "${BUILD_PKGS[@]}"
	bootstrap
	build default --enable-werror --with-systemd	# as check builds it: one build dir
	exec build/default/src/acceptd "$@"
	;;
check)
	need_pkgs "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
	# Everything a test needs is here before the first test starts: no
	# test touches the network.
	export ACCEPTD_TEST_DEBS="$top/build/debs"
	tests/fetch-debs.sh "$ACCEPTD_TEST_DEBS"
	bootstrap
	san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g -O1"
	# --with-systemd: fail rather than fall back to the in-tree code, so
	# that this variant really tests libsystemd (errors.py checks it too).
	stage "default: build" build default --enable-werror --with-systemd
	suite default build/default test-suite.log check
	suite "default: check-long" build/default test-suite-long.log check-long
	stage "default: valgrind" tests/valgrind.sh build/default
	stage "nosystemd: build" build nosystemd --enable-werror --without-systemd
	suite nosystemd build/nosystemd test-suite.log check
	stage "asan: build" build asan --enable-werror --with-systemd CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		suite asan build/asan test-suite.log check
	FUZZ_BUILD="$top/build/fuzz" stage "fuzz (${FUZZ_SECS:-30} s a target)" tests/fuzz/run.sh "${FUZZ_SECS:-30}"
	# A tarball left by an earlier run must not stand in for this one's.
	rm -f build/default/acceptd-*.tar.xz
	stage "default: make distcheck" make -C build/default -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror
	stage "install check" tests/install-check.sh build/default
	# The checked .debs are kept for the system tier; none from an earlier
	# run may stand in for them if the package check fails.
	rm -rf "$top/build/debs-out"
	DEB_OUT="$top/build/debs-out" stage "package check" tests/package/deb.sh build/default/acceptd-*.tar.xz
	# Those .debs installed in a container booted with a real systemd and
	# driven with systemctl (tests/system/; about 50 s).
	stage "system (real systemd)" python3 tests/system/systemd.py "$top/build/debs-out"
	for sk in "${skips[@]}"; do
		echo "dev.sh: skipped: $sk" >&2
	done
	for fl in "${failures[@]}"; do
		echo "dev.sh: FAILED: $fl" >&2
	done
	echo "$passed passed, $failed failed, $skipped skipped"
	exit $((failed > 0))
	;;
*)
	echo "usage: tests/dev.sh run [ACCEPTD ARGS...] | tests/dev.sh check" >&2
	exit 2
	;;
esac
