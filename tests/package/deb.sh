#!/bin/sh
# deb.sh TARBALL - build acceptd's Debian packages from a release tarball
# (what `make dist` makes) the way a packager would, check them, and check
# that the RPM spec in the same tarball parses and builds.
#
# The tarball alone must be enough: its contrib/debian becomes debian/, the
# tarball itself the orig tarball, and dpkg-buildpackage builds the source
# and binary packages, unsigned (the source package too, so that lintian
# checks debian/ as a source package as well).  Then: each .deb holds what
# its package is for, the units are neither enabled nor started on install,
# lintian reports no error (E:), `rpmspec -P` accepts the spec, and
# `rpmbuild -tb` packages exactly what make install installs.
#
# Everything happens in a temporary directory, removed at the end; nothing
# is installed.  Given several tarballs (a glob over a build directory),
# the newest is used.  DEB_BUILD_OPTIONS is passed on (nocheck skips the
# unit tests); parallel=N defaults to the number of CPUs.  DEB_OUT=DIR
# keeps a copy of the three .debs in DIR.
set -eu

fail() {
	echo "deb.sh: $*" >&2
	exit 1
}

[ $# -ge 1 ] || fail "usage: deb.sh TARBALL"
# shellcheck disable=SC2012 # release tarball names have no blanks
tarball=$(ls -t "$@" 2>/dev/null | head -n 1)
[ -f "$tarball" ] || fail "no tarball: $*"
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
case $(basename "$tarball") in
acceptd-*.tar.xz) ;;
*) fail "$tarball: not an acceptd-VERSION.tar.xz" ;;
esac
base=$(basename "$tarball" .tar.xz)
version=${base#acceptd-}
for tool in dpkg-buildpackage dpkg-deb dpkg-parsechangelog lintian rpmspec rpmbuild; do
	command -v "$tool" >/dev/null || fail "$tool not installed"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/acceptd-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

tar -xJf "$tarball" -C "$tmp"
src=$tmp/$base
[ -d "$src/contrib/debian" ] || fail "$tarball has no contrib/debian"
cp -a "$src/contrib/debian" "$src/debian"

# The changelog and the spec name the version they package: a release that
# forgot them would build packages of the wrong version.
debver=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
[ "${debver%-*}" = "$version" ] ||
	fail "contrib/debian/changelog is at $debver, the tarball at $version: add an entry"
rpmver=$(rpmspec -q --srpm --qf '%{VERSION}\n' "$src/contrib/rpm/acceptd.spec" 2>/dev/null)
[ "$rpmver" = "$version" ] ||
	fail "contrib/rpm/acceptd.spec is at $rpmver, the tarball at $version"

# 3.0 (quilt) builds on the upstream tarball, under the name it expects.
ln -s "$tarball" "$tmp/acceptd_$version.orig.tar.xz"

opts=${DEB_BUILD_OPTIONS:-}
case " $opts " in
*" parallel="*) ;;
*) opts="$opts parallel=$(nproc)" ;;
esac
echo "deb.sh: dpkg-buildpackage -us -uc in $src (DEB_BUILD_OPTIONS=$opts)" >&2
if ! (cd "$src" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc) >"$tmp/build.log" 2>&1; then
	tail -n 60 "$tmp/build.log" >&2
	fail "dpkg-buildpackage failed (the last 60 lines of its log are above)"
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
debver_noepoch=${debver#*:}

missing=0
# has DEB PATH...: each PATH is in DEB's data (as dpkg-deb -c shows it).
has() {
	deb=$1
	shift
	dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/list"
	for p in "$@"; do
		if ! grep -qxF "$p" "$tmp/list"; then
			echo "deb.sh: $(basename "$deb") lacks $p" >&2
			missing=$((missing + 1))
		fi
	done
}

deb() {
	f=$tmp/${1}_${debver_noepoch}_$arch.deb
	[ -f "$f" ] || fail "no $1 package was built; there are:" "$tmp"/*.deb
	echo "$f"
}

acceptd=$(deb acceptd)
lib=$(deb libacceptd0)
dev=$(deb libacceptd-dev)
has "$acceptd" /usr/sbin/acceptd \
	/usr/share/man/man8/acceptd.8.gz \
	/usr/share/man/man5/acceptd.conf.5.gz \
	/usr/share/man/man7/acceptd-workers.7.gz \
	/lib/systemd/system/acceptd.socket \
	/lib/systemd/system/acceptd.service \
	/lib/systemd/system/acceptd@.socket \
	/lib/systemd/system/acceptd@.service \
	/etc/acceptd/acceptd.conf \
	/usr/share/doc/acceptd/copyright \
	/usr/share/doc/acceptd/examples/inetd/acceptd.inetd.conf \
	/usr/share/doc/acceptd/examples/xinetd.d/acceptd \
	/usr/share/doc/acceptd/examples/openrc/acceptd
has "$lib" "/usr/lib/$multiarch/libacceptd.so.0"
grep -q "^/usr/lib/$multiarch/libacceptd\.so\.0\.[0-9.]*$" "$tmp/list" || {
	echo "deb.sh: $(basename "$lib") lacks the shared object libacceptd.so.0.*" >&2
	missing=$((missing + 1))
}
has "$dev" /usr/include/acceptd.h \
	"/usr/lib/$multiarch/libacceptd.so" \
	"/usr/lib/$multiarch/pkgconfig/acceptd.pc"

# The package's own control files: the conffile, and maintainer scripts
# that neither enable nor start a unit (the default config serves echo).
dpkg-deb -e "$acceptd" "$tmp/control"
grep -qxF /etc/acceptd/acceptd.conf "$tmp/control/conffiles" 2>/dev/null || {
	echo "deb.sh: /etc/acceptd/acceptd.conf is not a conffile" >&2
	missing=$((missing + 1))
}
# dh's start snippet runs `deb-systemd-invoke $_dh_action` with start or
# restart; its enable snippet enables outside a "debian-installed" guard.
post=$tmp/control/postinst
if grep -nE '_dh_action=(start|restart)|deb-systemd-invoke +(start|restart)\b' "$post"; then
	echo "deb.sh: acceptd's postinst starts a unit (above)" >&2
	missing=$((missing + 1))
fi
if [ "$(grep -c 'deb-systemd-helper enable' "$post")" -gt \
	"$(grep -c 'deb-systemd-helper debian-installed' "$post")" ]; then
	echo "deb.sh: acceptd's postinst enables a unit on install" >&2
	missing=$((missing + 1))
fi
[ "$missing" = 0 ] || fail "$missing problem(s) with the packages' contents"
for f in "$acceptd" "$lib" "$dev"; do
	echo "deb.sh: $(basename "$f"): $(dpkg-deb -c "$f" | grep -vc '/$') files" >&2
done

# lintian: no errors; warnings and the rest are shown, for a human to judge.
changes=$tmp/acceptd_${debver_noepoch}_$arch.changes
[ -f "$changes" ] || fail "no .changes file"
# Its status: 0 clean, 2 errors found (--fail-on error, the default; the
# E: lines are checked below as well), 1 lintian itself failed.
lrc=0
lintian --info --display-info "$changes" >"$tmp/lintian.log" 2>&1 || lrc=$?
if [ "$lrc" != 0 ] && [ "$lrc" != 2 ]; then
	cat "$tmp/lintian.log" >&2
	fail "lintian failed to run (status $lrc)"
fi
if [ -s "$tmp/lintian.log" ]; then
	grep -E '^[EWIP]: ' "$tmp/lintian.log" | sort | uniq -c | sed 's/^/deb.sh: lintian: /' >&2 || true
fi
lint_errors=0
if [ "$lrc" = 2 ] || grep -q '^E: ' "$tmp/lintian.log"; then
	cat "$tmp/lintian.log" >&2
	lint_errors=1 # reported after the RPM checks, which run anyway
fi

# The RPM spec must parse.  Then it is built from the same tarball
# (rpmbuild -tb), so that its %files lists are checked against what make
# install installs: a file listed but not installed, or installed but not
# listed, fails the build.  Debian has no systemd-rpm-macros, so those
# scriptlets stay unexpanded and the .rpms are thrown away.
rpmspec -P "$src/contrib/rpm/acceptd.spec" >"$tmp/spec.out" 2>&1 || {
	cat "$tmp/spec.out" >&2
	fail "rpmspec -P contrib/rpm/acceptd.spec failed"
}
echo "deb.sh: rpmbuild -tb --nodeps $(basename "$tarball")" >&2
if ! rpmbuild --define "_topdir $tmp/rpm" -tb --nodeps "$tarball" >"$tmp/rpm.log" 2>&1; then
	tail -n 40 "$tmp/rpm.log" >&2
	fail "rpmbuild -tb failed (the last 40 lines of its log are above)"
fi

[ "$lint_errors" = 0 ] || fail "lintian reports errors (E: above)"
# DEB_OUT=DIR keeps the checked .debs for the system tier (tests/system/),
# which installs them into a container booted with a real systemd.
if [ -n "${DEB_OUT:-}" ]; then
	mkdir -p "$DEB_OUT" && rm -f "$DEB_OUT"/*.deb && cp "$acceptd" "$lib" "$dev" "$DEB_OUT"/ ||
		fail "cannot copy the .debs to $DEB_OUT"
fi
echo "deb.sh: ok: acceptd $debver, 3 packages, lintian clean of errors, spec parses and builds ($(($(date +%s) - start)) s)" >&2
