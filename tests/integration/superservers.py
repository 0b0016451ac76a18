"""superservers.py - the superserver files acceptd ships in contrib/, run
as shipped under the real programs that read them:

  * every entry of contrib/inetd/acceptd.inetd.conf under OpenBSD inetd,
  * every service of contrib/xinetd.d/acceptd under xinetd,
  * contrib/openrc/acceptd (with acceptd.confd) under OpenRC's openrc-run
    and supervise-daemon: start, status, reload, stop.

The files are read, not copied into this test: what a test replaces is
what an operator adapts, and each file says so in its header.  inetd
entries: the service becomes 127.0.0.1:PORT, /usr/sbin/acceptd the build's
binary, /usr/local/bin/handler a test handler; entries commented out as
"#SERVICE ..." (no blank after the "#") are enabled.  xinetd services:
disable = no, type = UNLISTED with a free port bound to 127.0.0.1, the same
two paths.  The tftp entries run tftpd-hpa's in.tftpd (unpacked from the
.deb tests/fetch-debs.sh fetched: helpers/tftp.py) for /usr/sbin/in.tftpd
and a temporary directory for /srv/tftp, with curl fetching a random 1 MB
file; their timers are shortened (--idle-exit 3, in.tftpd -t 1 instead of
its 900 s wait for more requests) to see acceptd's idle exit hand the
socket back, and the next request served by a new acceptd.  The user field is kept (nobody) unless that user cannot run the
build's binary, in which case root runs it.  The OpenRC script runs
unchanged; its conf.d file is the shipped one with test settings appended.

Neither OpenBSD inetd (it conflicts with xinetd as a package) nor OpenRC
(it wants to be the init system) is installed: tests/fetch-debs.sh fetches
their .debs before the tests (tests/dev.sh check runs it; no test touches
the network), and they are unpacked into a cache outside the source tree
($ACCEPTD_TEST_CACHE, else $TMPDIR/acceptd-test-cache).  openrc-run has its
paths compiled in (/lib/rc, /run/openrc), so it runs in a private mount
namespace where an overlay puts the unpacked files (and the build's
acceptd as /usr/sbin/acceptd) over /usr and a tmpfs over /run; nothing
outside the namespace changes.  Every daemon is stopped by its pid."""
import hashlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (ACCEPTD, Daemon, Skip, case, exchange, free_port,  # noqa: E402
                          pid_dead, proc_stat, read_all, run, stop_pid,
                          talk, tmpdir, wait_port, wait_until)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from inetds import (cached_dir, parse_xinetd, run_as, start_openbsd,  # noqa: E402
                    start_xinetd, unpacked_debs)
from tftp import SRV as SHIPPED_SRV, TFTPD as SHIPPED_TFTPD, tftp_root  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
INETD_CONF = os.path.join(TOP, "contrib", "inetd", "acceptd.inetd.conf")
XINETD_CONF = os.path.join(TOP, "contrib", "xinetd.d", "acceptd")
OPENRC_SCRIPT = os.path.join(TOP, "contrib", "openrc", "acceptd")
OPENRC_CONFD = os.path.join(TOP, "contrib", "openrc", "acceptd.confd")
ENV_SH = os.path.join(HERE, "helpers", "src_env.sh")

SHIPPED_ACCEPTD = "/usr/sbin/acceptd"
SHIPPED_HANDLER = "/usr/local/bin/handler"
DAYTIME = re.compile(rb"[A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \d{4} \S+\r\n")


# --- what the shipped files hold -------------------------------------------

def inetd_entries():
    """[(fields, line number)] of every entry, disabled ones included."""
    out = []
    with open(INETD_CONF) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or re.match(r"#(\s|$)", line):
                continue
            out.append((line.lstrip("#").split(), n))
    return out


def xinetd_services():
    """[(name, [(attribute, operator, value)])] of every service block."""
    with open(XINETD_CONF) as f:
        return parse_xinetd(f.read())


def xinetd_attr(attrs, name):
    return next((v for k, _, v in attrs if k == name), None)


def argv_of(args):
    """What an entry runs: ("builtin", NAME), ("handler", None) or
    ("tftp", None)."""
    if SHIPPED_HANDLER in args:
        return "handler", None
    if SHIPPED_TFTPD in args:
        return "tftp", None
    for i, a in enumerate(args):
        if a in ("-b", "--builtin") and i + 1 < len(args):
            return "builtin", args[i + 1]
        if a.startswith("--builtin="):
            return "builtin", a.split("=", 1)[1]
    return "builtin", "echo"                   # acceptd's default


# --- the test's stand-ins for what an operator adapts ----------------------

def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))


def handler_in(top):
    """src_env.sh where any user can run it: the env report as a PROGRAM."""
    os.chmod(top, 0o755)
    path = os.path.join(top, "handler")
    shutil.copy(ENV_SH, path)
    os.chmod(path, 0o755)
    return path


TFTP_SIZE = 1 << 20
IDLE_EXIT = "3"         # seconds, for the shipped 600
TFTPD_WAIT = "1"        # in.tftpd -t: seconds it waits for more requests


def tftp_args(args, tftpd, srv):
    """A tftp entry's arguments as run here: in.tftpd and /srv/tftp
    replaced, and the short timers (in.tftpd -t after its path, acceptd's
    --idle-exit value)."""
    assert "--idle-exit" in args and SHIPPED_SRV in args, args
    out = []
    for i, a in enumerate(args):
        if a == SHIPPED_TFTPD:
            out += [tftpd, "-t", TFTPD_WAIT]
        elif a == SHIPPED_SRV:
            out.append(srv)
        elif i and args[i - 1] == "--idle-exit":
            out.append(IDLE_EXIT)
        else:
            out.append(a)
    return out


class Tftp:
    """What a tftp entry serves: boot.img's size and hash."""

    def __init__(self, data):
        self.size, self.sha256 = len(data), hashlib.sha256(data).hexdigest()


def tftp_fetch(port, want, times=2):
    """curl fetches boot.img, times at once; each copy has its hash."""
    procs = [subprocess.Popen(["curl", "-sS", "--max-time", "20", "-o", "-",
                               "tftp://127.0.0.1:%d/boot.img" % port],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(times)]
    for p in procs:
        out, err = p.communicate(timeout=30)
        got = hashlib.sha256(out).hexdigest()
        assert p.returncode == 0 and got == want.sha256, \
            "curl: status %d, %d of %d bytes, sha256 %s, want %s: %s" % (
                p.returncode, len(out), want.size, got, want.sha256,
                err.decode(errors="replace"))


def parse_env(out):
    lines = out.decode("utf-8", "replace").splitlines()
    assert lines and lines[-1] == "END", "handler output incomplete: %r" % out
    bad = [ln for ln in lines[:-1] if not re.match(r"[A-Z_]+=", ln)]
    assert not bad, "foreign lines in the client's stream: %r" % bad
    return dict(ln.split("=", 1) for ln in lines[:-1])


def need_root(why="the superservers switch users"):
    if os.geteuid() != 0:
        raise Skip("needs root (%s)" % why)


# --- what every service must do, by mode -------------------------------------

def serve_once(s, kind, name):
    """One connection; returns the pid of the acceptd that served it when
    the reply says (a handler's PPID), else None."""
    if kind == "tftp":
        tftp_fetch(s.port, name)
        return None
    if kind == "handler":
        me, out = talk(("127.0.0.1", s.port))
        env = parse_env(out)
        assert env.get("PROTO") == "TCP", env
        assert env.get("TCPREMOTEIP") == "127.0.0.1", env
        assert env.get("TCPREMOTEPORT") == str(me[1]), env
        assert env.get("TCPLOCALPORT") == str(s.port), env
        assert env.get("ACCEPTD_LISTENER") == "127.0.0.1:%d" % s.port, env
        return int(env["PPID"])
    if name == "echo":
        data = b"through the shipped entry\n" + bytes(range(256)) * 16
        got = exchange("127.0.0.1:%d" % s.port, data)
        assert got == data, "echo: %d bytes back, want %d" % (len(got), len(data))
    elif name == "daytime":
        got = exchange("127.0.0.1:%d" % s.port)
        assert DAYTIME.fullmatch(got), "not a daytime line: %r" % got
    else:
        raise AssertionError("no check written for the built-in %r" % name)
    return None


def check_wait(s, kind, name, user):
    """One acceptd, running as the entry's user, serves every connection and
    stays; stopped, it exits 0, and the superserver starts another on demand.
    tftp: that one exits 0 by itself (--idle-exit) once in.tftpd has, and
    the superserver, watching the socket again, starts a third."""
    first = None
    for _ in range(3):
        ppid = serve_once(s, kind, name)
        kids = s.acceptds()
        assert len(kids) == 1, "wait: %r children after a connection\n%s" % (kids, s.diag())
        assert ppid in (None, kids[0]), "served by %d, not by %d" % (ppid, kids[0])
        assert first in (None, kids[0]), "wait: a second acceptd %d after %d" % (kids[0], first)
        first = kids[0]
    assert uid_of(first) == pwd.getpwnam(user).pw_uid, \
        "acceptd %d does not run as %s" % (first, user)
    assert stop_pid(first), "acceptd %d ignored SIGTERM" % first
    assert s.wait_exit(first) == 0, s.diag()
    serve_once(s, kind, name)
    again = wait_until(s.acceptds, 10, "a new acceptd")
    assert again != [first], "served by the stopped acceptd %d" % first
    if kind == "tftp":
        second, = again
        assert s.wait_exit(second) == 0, "acceptd %d after its --idle-exit\n%s" % (
            second, s.diag())
        serve_once(s, kind, name)
        third = wait_until(s.acceptds, 10, "an acceptd after the idle exit")
        assert third != [second] and len(third) == 1, \
            "after %d's idle exit: %r\n%s" % (second, third, s.diag())


def check_nowait(s, kind, name):
    """Every connection gets an acceptd of its own, which exits 0 after it."""
    seen = set()
    for _ in range(3):
        before = set(s.exits())
        ppid = serve_once(s, kind, name)
        new = wait_until(lambda: set(s.exits()) - before, 10, "an acceptd to exit")
        assert len(new) == 1, "nowait: %r ended for one connection\n%s" % (new, s.diag())
        pid = new.pop()
        assert ppid in (None, pid), "served by %d, but %d exited" % (ppid, pid)
        assert s.exits()[pid] == 0, "acceptd %d exit status %d\n%s" % (
            pid, s.exits()[pid], s.diag())
        seen.add(pid)
    assert len(seen) == 3, seen
    wait_until(lambda: not s.acceptds(), 10, "no acceptd left running")


# --- the cases ----------------------------------------------------------------

@case
def shipped_files_have_both_modes():
    """The cases below come from the files; make sure they found them."""
    modes = sorted({fields[3] for fields, _ in inetd_entries()})
    assert modes == ["nowait", "wait"], "inetd entries' modes: %r" % modes
    kinds = sorted({tuple(fields[1:3]) for fields, _ in inetd_entries()})
    assert kinds == [("dgram", "udp"), ("stream", "tcp")], "inetd entries' sockets: %r" % kinds
    for fields, n in inetd_entries():
        if fields[1] == "dgram":
            assert fields[3] == "wait", "%s:%d: a datagram entry is wait" % (INETD_CONF, n)
            assert argv_of(fields[7:])[0] == "tftp", "%s:%d: no check for %r" % (
                INETD_CONF, n, fields)
    for fields, n in inetd_entries():
        assert len(fields) >= 7, "%s:%d: not an inetd entry: %r" % (INETD_CONF, n, fields)
        assert fields[5] == SHIPPED_ACCEPTD, "%s:%d: server %s" % (INETD_CONF, n, fields[5])
    waits = sorted({xinetd_attr(a, "wait") for _, a in xinetd_services()})
    assert waits == ["no", "yes"], "xinetd services' wait values: %r" % waits
    types = sorted({xinetd_attr(a, "socket_type") for _, a in xinetd_services()})
    assert types == ["dgram", "stream"], "xinetd services' socket types: %r" % types
    for name, attrs in xinetd_services():
        if xinetd_attr(attrs, "socket_type") == "dgram":
            assert xinetd_attr(attrs, "wait") == "yes" and \
                xinetd_attr(attrs, "protocol") == "udp", name
            assert argv_of(xinetd_attr(attrs, "server_args").split())[0] == "tftp", name
    for name, attrs in xinetd_services():
        assert xinetd_attr(attrs, "disable") == "yes", "%s ships enabled" % name
        assert xinetd_attr(attrs, "server") == SHIPPED_ACCEPTD, name


def inetd_case(fields, n):
    def fn():
        need_root()
        top = tmpdir()
        f = list(fields)
        f[0] = "127.0.0.1:%d" % free_port()
        f[4] = user = run_as(f[4])
        f[5] = ACCEPTD
        kind, name = argv_of(f[7:])
        f = [handler_in(top) if a == SHIPPED_HANDLER else a for a in f]
        if kind == "tftp":
            tftpd, srv, data = tftp_root(TFTP_SIZE)
            f[7:] = tftp_args(f[7:], tftpd, srv)
            name = Tftp(data)
        s = start_openbsd(top, f)
        if fields[3] == "wait":
            check_wait(s, kind, name, user)
        else:
            check_nowait(s, kind, name)
    fn.__name__ = "inetd_%s_%s" % (re.sub(r"\W", "_", fields[0]), fields[3])
    fn.__doc__ = "%s:%d under OpenBSD inetd" % (INETD_CONF, n)
    return fn


def xinetd_case(name, attrs):
    def fn():
        need_root()
        top = tmpdir()
        port = free_port()
        user = run_as(xinetd_attr(attrs, "user") or "root")
        kind, builtin = argv_of((xinetd_attr(attrs, "server_args") or "").split())
        handler = handler_in(top)
        if kind == "tftp":
            tftpd, srv, data = tftp_root(TFTP_SIZE)
            builtin = Tftp(data)
        new = []
        for k, op, v in attrs:
            if k in ("disable", "type", "port", "bind", "user"):
                continue
            if k == "server":
                v = ACCEPTD
            elif k == "server_args":
                v = v.replace(SHIPPED_HANDLER, handler)
                if kind == "tftp":
                    v = " ".join(tftp_args(v.split(), tftpd, srv))
            new.append((k, op, v))
        new += [("disable", "=", "no"), ("type", "=", "UNLISTED"), ("port", "=", str(port)),
                ("bind", "=", "127.0.0.1"), ("user", "=", user)]
        s = start_xinetd(top, name, new, port)
        if xinetd_attr(attrs, "wait") == "yes":
            check_wait(s, kind, builtin, user)
        else:
            check_nowait(s, kind, builtin)
    fn.__name__ = "xinetd_%s" % re.sub(r"\W", "_", xinetd_attr(attrs, "id") or name)
    fn.__doc__ = "service %s of %s under xinetd" % (name, XINETD_CONF)
    return fn


for _fields, _n in inetd_entries():
    case(inetd_case(_fields, _n))
for _name, _attrs in xinetd_services():
    case(xinetd_case(_name, _attrs))


# --- OpenRC -------------------------------------------------------------------

def openrc_vars(confd_extra=""):
    """What the script sets once sourced, as openrc-run would (conf.d
    first), with OpenRC's functions stubbed: a dict of the variables."""
    names = ("command command_args pidfile supervisor retry error_log respawn_delay "
             "respawn_max respawn_period extra_started_commands").split()
    script = ('RC_SVCNAME=acceptd; . "$1"; %s\n. "$2"\n'
              'depend; for v in %s; do eval "printf \'%%s=%%s\\n\' $v \\"\\$$v\\""; done'
              % (confd_extra, " ".join(names)))
    stubs = "".join("%s() { :; }\n" % f for f in ("need", "use", "after", "before",
                                                  "provide", "keyword"))
    r = subprocess.run(["sh", "-c", stubs + script, "sh", OPENRC_CONFD, OPENRC_SCRIPT],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and not r.stderr, r
    return dict(ln.split("=", 1) for ln in r.stdout.splitlines())


def drain_of(args):
    for i, a in enumerate(args):
        if a == "--drain" and i + 1 < len(args):
            return int(args[i + 1])
        if a.startswith("--drain="):
            return int(a.split("=", 1)[1])
    return 10


def retry_total(spec):
    """Seconds a TERM/N/KILL/M schedule waits before its KILL."""
    steps = spec.split("/")
    assert steps[0] in ("TERM", "SIGTERM") and len(steps) >= 2, spec
    return int(steps[1])


@case
def openrc_script_parses_and_its_command_serves():
    """Without openrc-run: the script and conf.d are valid sh, the shipped
    defaults make the expected command line, the stop schedule outlasts
    acceptd's drain, and acceptd runs with what the script would give it."""
    for f in (OPENRC_SCRIPT, OPENRC_CONFD):
        r = subprocess.run(["sh", "-n", f], capture_output=True, text=True)
        assert r.returncode == 0, "sh -n %s: %s" % (f, r.stderr)
    with open(OPENRC_SCRIPT) as f:
        assert f.readline().strip() == "#!/sbin/openrc-run"
    v = openrc_vars()
    assert v["command"] == SHIPPED_ACCEPTD, v
    assert v["supervisor"] == "supervise-daemon", v
    assert v["command_args"].split() == ["--config", "/etc/acceptd/acceptd.conf"], v
    assert "reload" in v["extra_started_commands"].split(), v
    # supervise-daemon SIGKILLs at the end of the TERM step: acceptd must
    # have drained (--drain) and killed its handlers (5 s later) by then.
    assert retry_total(v["retry"]) > drain_of(v["command_args"].split()) + 5, v
    # An empty ACCEPTD_CONFIG leaves ACCEPTD_OPTS alone on the command line.
    v = openrc_vars('ACCEPTD_CONFIG=""; ACCEPTD_OPTS="-v -l 127.0.0.1:0 -b echo"')
    assert v["command_args"].split() == ["-v", "-l", "127.0.0.1:0", "-b", "echo"], v
    d = Daemon(v["command_args"].split())
    addr, = d.listening()
    assert exchange(addr, b"as the script runs it\n") == b"as the script runs it\n", d.log()
    assert d.stop() == 0, d.log()


def openrc_root():
    """The unpacked openrc, librc1 and libeinfo1, in the merged-/usr layout
    of the host (so one overlay on /usr places all of it)."""
    raw = unpacked_debs("openrc", ["openrc", "librc1", "libeinfo1"])

    def merge(root):
        usr = os.path.join(root, "usr")
        shutil.copytree(os.path.join(raw, "usr"), usr, symlinks=True)
        for d in ("lib", "sbin", "bin"):
            if os.path.isdir(os.path.join(raw, d)):
                shutil.copytree(os.path.join(raw, d), os.path.join(usr, d), symlinks=True,
                                dirs_exist_ok=True)
    return cached_dir(os.path.basename(raw) + "-usr", merge)


class OpenRC:
    """A private mount namespace where OpenRC's files sit in /usr and
    /run is a fresh tmpfs, held open by a sleeping shell; openrc-run
    commands enter it with nsenter."""

    def __init__(self, top):
        need_root("mount namespaces, and the service runs as root")
        for tool in ("unshare", "nsenter", "mount"):
            if not shutil.which(tool):
                raise Skip("%s not installed" % tool)
        if os.path.realpath("/lib") != "/usr/lib" or os.path.realpath("/sbin") != "/usr/sbin":
            raise Skip("needs a merged /usr (OpenRC's paths are under /lib and /sbin)")
        root = openrc_root()
        mine = os.path.join(top, "usr", "sbin")
        os.makedirs(mine)
        os.symlink(os.path.abspath(ACCEPTD), os.path.join(mine, "acceptd"))
        svcdirs = " ".join("/run/openrc/" + d for d in (
            "daemons exclusive failed hotplugged inactive options scheduled started "
            "starting stopping tmp wasinactive").split())
        # What OpenRC's boot would have left: its state directories and
        # softlevel (without which openrc-run refuses to act).
        setup = ("mount --make-rprivate / && "
                 "mount -t overlay overlay -o lowerdir=%s:%s:/usr /usr && "
                 "mount -t tmpfs tmpfs /run && mkdir -p %s && touch /run/openrc/softlevel && "
                 "echo namespace ready >&2 && exec sleep 3600"
                 % (os.path.join(top, "usr"), os.path.join(root, "usr"), svcdirs))
        self.holder = Daemon([], argv0=["unshare", "-m", "sh", "-c", setup])
        try:
            self.holder.wait_line("namespace ready")
        except AssertionError:
            # A failure, not a skip: root can always make one here, so
            # this is a broken test environment or a broken setup line.
            raise AssertionError("cannot set up the mount namespace: %s" % self.holder.log())
        self.initd = os.path.join(top, "init.d")
        os.mkdir(self.initd)
        shutil.copy(OPENRC_SCRIPT, os.path.join(self.initd, "acceptd"))
        os.chmod(os.path.join(self.initd, "acceptd"), 0o755)
        os.mkdir(os.path.join(top, "conf.d"))
        self.confd = os.path.join(top, "conf.d", "acceptd")
        shutil.copy(OPENRC_CONFD, self.confd)

    def inside(self, path):
        """A path of the namespace, as seen from outside it."""
        return "/proc/%d/root%s" % (self.holder.pid, path)

    def rc(self, action, timeout=40):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LISTEN_", "NOTIFY_", "RC_", "WATCHDOG_"))}
        return subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m",
                               "/usr/sbin/openrc-run", os.path.join(self.initd, "acceptd"),
                               action], env=env, capture_output=True, text=True,
                              timeout=timeout)

    def value(self, name):
        """A value openrc-run stored for the service (child_pid, ...)."""
        try:
            with open(self.inside("/run/openrc/options/acceptd/" + name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def supervisor_pid(self):
        try:
            with open(self.inside("/run/acceptd.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Stop whatever still runs in there, each by its pid."""
        sup = self.supervisor_pid()
        child = self.value("child_pid")
        if sup and not pid_dead(sup):
            stop_pid(sup, 25)
        if child and child.isdigit() and not pid_dead(int(child)):
            stop_pid(int(child), 20)
        self.holder.stop()


def read_file(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def supports_config():
    r = subprocess.run([ACCEPTD, "--help"], capture_output=True, text=True, timeout=10)
    return "--config" in r.stdout + r.stderr


@case
def openrc_start_reload_stop():
    """The shipped script under openrc-run and supervise-daemon: start,
    status, a reload that keeps the pid, the sockets and an open
    connection, and a stop that lets a running handler finish."""
    top = tmpdir()
    os.chmod(top, 0o755)
    with OpenRC(top) as rc:
        port, port2 = free_port(), free_port()
        log = os.path.join(top, "acceptd.log")
        handler = "/bin/sh %s read" % ENV_SH
        conf = os.path.join(top, "acceptd.conf")
        with_config = supports_config()
        with open(rc.confd, "a") as f:
            f.write("\n# the test's settings\nerror_log=%s\n" % log)
            if with_config:
                with open(conf, "w") as c:
                    c.write("listen = 127.0.0.1:%d\nexec = %s\n" % (port, handler))
                f.write('ACCEPTD_CONFIG=%s\nACCEPTD_OPTS="-v"\n' % conf)
            else:
                f.write('ACCEPTD_CONFIG=""\nACCEPTD_OPTS="-v -l 127.0.0.1:%d -- %s"\n'
                        % (port, handler))

        r = rc.rc("start")
        assert r.returncode == 0, "start: %s%s\n%s" % (r.stdout, r.stderr, read_file(log))
        wait_until(lambda: "listening on 127.0.0.1:%d" % port in read_file(log), 10,
                   "acceptd to listen")
        wait_port("127.0.0.1", port)
        me, out = talk(("127.0.0.1", port), b"one\n")
        env = parse_env(out)
        assert env.get("LINE") == "one" and env.get("TCPLOCALPORT") == str(port), env
        pid = int(env["PPID"])
        assert str(pid) == rc.value("child_pid"), (pid, rc.value("child_pid"))
        sup = rc.supervisor_pid()
        assert sup and proc_stat(pid)[1] == sup, "acceptd %d is not supervise-daemon's" % pid
        r = rc.rc("status")
        assert r.returncode == 0 and "started" in r.stdout + r.stderr, r

        # Reload with a connection open; with a config file, a changed one.
        held = socket.create_connection(("127.0.0.1", port), timeout=10)
        wait_until(lambda: "connection 127.0.0.1:%d " % held.getsockname()[1]
                   in read_file(log), 10, "the held connection's handler")
        if with_config:
            with open(conf, "a") as c:
                c.write("listen = 127.0.0.1:%d\n" % port2)
        mark = read_file(log).count("reload: done")
        r = rc.rc("reload")
        assert r.returncode == 0, "reload: %s%s" % (r.stdout, r.stderr)
        wait_until(lambda: read_file(log).count("reload: done") > mark, 10, "the reload")
        with held:
            held.sendall(b"held\n")
            env = parse_env(read_all(held))
        assert env.get("LINE") == "held" and int(env["PPID"]) == pid, env
        for p in ([port, port2] if with_config else [port]):
            _, out = talk(("127.0.0.1", p), b"after\n")
            env = parse_env(out)
            assert int(env["PPID"]) == pid, "a reload changed the pid: %r" % env
            assert env.get("TCPLOCALPORT") == str(p), env

        # Stop while a handler waits for its line: acceptd drains, and
        # the supervisor does not kill it meanwhile.
        held = socket.create_connection(("127.0.0.1", port), timeout=10)
        wait_until(lambda: "connection 127.0.0.1:%d " % held.getsockname()[1]
                   in read_file(log), 10, "the held connection's handler")
        result = {}
        stopper = threading.Thread(target=lambda: result.update(r=rc.rc("stop")))
        stopper.start()
        wait_until(lambda: "SIGTERM: stopping" in read_file(log), 10, "acceptd to stop")
        with held:
            held.sendall(b"last\n")
            env = parse_env(read_all(held))
        assert env.get("LINE") == "last", env
        stopper.join(40)
        assert not stopper.is_alive(), "openrc-run stop did not return"
        r = result["r"]
        assert r.returncode == 0, "stop: %s%s\n%s" % (r.stdout, r.stderr, read_file(log))
        wait_until(lambda: pid_dead(pid) and pid_dead(sup), 10, "acceptd and its supervisor")
        assert re.search(r"stopped: active 0 total \d+ refused 0 failed 0", read_file(log)), \
            read_file(log)
        r = rc.rc("status")
        assert r.returncode == 3 and "stopped" in r.stdout + r.stderr, r


run()
