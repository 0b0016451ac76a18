#!/bin/sh
# install-check.sh BUILDDIR - what `make install` puts where, as a package
# build does it: `make install DESTDIR=TMP` in a configured build dir, then
# every file a package ships must be where configure said (the paths are
# read from the build's own Makefile, so --prefix, --sysconfdir and
# --with-systemdsystemunitdir are honoured).  Then the config's install
# rule: a second install keeps an edited acceptd.conf, and uninstall
# removes everything else and keeps that edited file.
#
# Prints one line per problem and exits 1 if there was any.
#
# The directory variables are set by eval, from the build's Makefile.
# shellcheck disable=SC2154
set -eu

b=${1:?usage: tests/install-check.sh BUILDDIR}
b=$(cd "$b" && pwd)
[ -f "$b/Makefile" ] || { echo "install-check: $b is not a configured build dir" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/acceptd-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/root
log=$work/log

# The install directories as the build's Makefile expands them.
printf '%s\n' 'install-check-dirs:' \
	"	@echo \"sbindir='\$(sbindir)' mandir='\$(mandir)' libdir='\$(libdir)'\"" \
	"	@echo \"includedir='\$(includedir)' pkgconfigdir='\$(pkgconfigdir)'\"" \
	"	@echo \"sysconfdir='\$(sysconfdir)' docdir='\$(docdir)'\"" \
	"	@echo \"unitdir='\$(systemdsystemunitdir)' units='\$(systemdsystemunit_DATA)'\"" \
	>"$work/dirs.mk"
# After the install: a Makefile that make had to regenerate first would
# have printed its own lines into the output read here.
if ! make -s -C "$b" install DESTDIR="$dest" >"$log" 2>&1; then
	cat "$log" >&2
	echo "install-check: make install DESTDIR=$dest failed" >&2
	exit 1
fi
eval "$(make -s --no-print-directory -C "$b" -f Makefile -f "$work/dirs.mk" install-check-dirs |
	grep -E "^sbindir=|^includedir=|^sysconfdir=|^unitdir=")"
if [ -z "${sbindir:-}" ] || [ -z "${docdir:-}" ]; then
	echo "install-check: cannot read the install directories from $b/Makefile" >&2
	exit 2
fi

fail=0
checked=0
bad() {
	echo "install-check: $*" >&2
	fail=1
}
# has PATH [test]: PATH (as installed, without DESTDIR) exists in DESTDIR.
has() {
	checked=$((checked + 1))
	test "${2:--f}" "$dest$1" || bad "missing: $1 (test ${2:--f})"
}

has "$sbindir/acceptd" -x
has "$mandir/man8/acceptd.8"
has "$mandir/man7/acceptd-workers.7"
has "$mandir/man5/acceptd.conf.5"
has "$pkgconfigdir/acceptd.pc"
has "$libdir/libacceptd.so" -L
has "$libdir/libacceptd.so.0" -L
has "$includedir/acceptd.h"
has "$sysconfdir/acceptd/acceptd.conf"
has "$docdir/examples/handler-limits.conf"
has "$docdir/examples/haproxy.conf"
has "$docdir/examples/systemd/acceptd-nowait.socket"
has "$docdir/examples/systemd/acceptd-nowait@.service"
has "$docdir/examples/systemd/acceptd-tftp.socket"
has "$docdir/examples/systemd/acceptd-tftp.service"
has "$docdir/examples/systemd/cgroup.conf"
# libacceptd.so.0 must lead to a real library.
has "$(cd "$dest$libdir" && readlink -f libacceptd.so.0 | sed "s|^$dest||")"

# The installed binary runs, and knows --config.
if [ -x "$dest$sbindir/acceptd" ]; then
	"$dest$sbindir/acceptd" --version >/dev/null 2>&1 || bad "$sbindir/acceptd --version fails"
	"$dest$sbindir/acceptd" --help 2>&1 | grep -q -- --config || bad "$sbindir/acceptd: no --config"
fi

# The pkg-config file points at the installed header and library.
if [ -f "$dest$pkgconfigdir/acceptd.pc" ]; then
	grep -q -- '-lacceptd' "$dest$pkgconfigdir/acceptd.pc" || bad "acceptd.pc: no -lacceptd"
fi

if [ -n "$units" ]; then
	for u in acceptd.socket acceptd.service acceptd@.socket acceptd@.service; do
		has "$unitdir/$u"
	done
	# The examples with a fixed port are documentation only.
	for u in acceptd-nowait.socket acceptd-nowait@.service acceptd-tftp.socket \
		 acceptd-tftp.service; do
		[ ! -e "$dest$unitdir/$u" ] || bad "$unitdir/$u: an example installed as a unit"
	done
	# The units name the installed binary and config directory.
	for u in acceptd.service acceptd@.service; do
		[ -f "$dest$unitdir/$u" ] || continue
		grep -q "^ExecStart=$sbindir/acceptd --config $sysconfdir/acceptd/" \
			"$dest$unitdir/$u" || bad "$unitdir/$u: ExecStart does not name $sbindir/acceptd"
	done
else
	echo "install-check: systemd units not installed (--with-systemdsystemunitdir=no)" >&2
fi

# An edited config survives a reinstall and the uninstall; the rest goes.
conf=$dest$sysconfdir/acceptd/acceptd.conf
if [ -f "$conf" ]; then
	echo "max-conns = 7" >>"$conf"
	cp "$conf" "$work/edited"
	make -s -C "$b" install DESTDIR="$dest" >"$log" 2>&1 || { cat "$log" >&2; bad "second make install failed"; }
	cmp -s "$conf" "$work/edited" || bad "make install overwrote an edited $sysconfdir/acceptd/acceptd.conf"
	make -s -C "$b" uninstall DESTDIR="$dest" >"$log" 2>&1 || { cat "$log" >&2; bad "make uninstall failed"; }
	cmp -s "$conf" "$work/edited" || bad "make uninstall removed an edited $sysconfdir/acceptd/acceptd.conf"
	left=$(cd "$dest" && find . ! -type d ! -path ".$sysconfdir/acceptd/acceptd.conf")
	[ -z "$left" ] || bad "left after make uninstall: $(echo "$left" | tr '\n' ' ')"
fi

if [ "$fail" -ne 0 ]; then
	echo "install-check: FAILED ($b)" >&2
	exit 1
fi
echo "install-check: $checked files in place, reinstall and uninstall keep an edited config ($b)" >&2
