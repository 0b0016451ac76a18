#!/bin/sh
# fetch-debs.sh [DIR] - download the .debs that some tests unpack instead of
# installing (OpenBSD inetd conflicts with xinetd as a package; OpenRC wants
# to be the init system; tftpd-hpa would start a tftp service of its own,
# and the datagram tests run only its in.tftpd), into DIR (default: build/debs in the source tree,
# where tests/integration/helpers/inetds.py looks; ACCEPTD_TEST_DEBS moves
# both).  tests/dev.sh check runs it before any test starts, so that no
# test touches the network.  Keeps what is already there; exits 1, naming
# the packages, when a download fails.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${ACCEPTD_TEST_DEBS:-$top/build/debs}}
pkgs="openbsd-inetd openrc librc1 libeinfo1 tftpd-hpa"

mkdir -p "$dir"
cd "$dir"
missing=
for p in $pkgs; do
	ls "${p}"_*.deb >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
# shellcheck disable=SC2086 # a list of package names
if ! apt-get download -q $missing >download.log 2>&1; then
	echo "fetch-debs.sh: apt-get download$missing failed:" >&2
	tail -n 3 download.log >&2
	exit 1
fi
for p in $missing; do
	ls "${p}"_*.deb >/dev/null 2>&1 || { echo "fetch-debs.sh: no $p .deb after the download" >&2; exit 1; }
done
