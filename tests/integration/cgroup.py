"""cgroup.py - --cgroup and --cgroup-limit (#17, step 2): each handler and
pool worker starts in a cgroup v2 of its own under the one acceptd runs
in, so nothing a handler starts outlives it.

Where: acceptd reads its cgroup C from /proc/self/cgroup and moves into
C/acceptd; a spawned handler (and a wait-mode datagram handler) starts in
C/conn-N, a pool worker in C/worker-N, N counting up from 1.  Each case
takes a C of its own from acceptd_test.scratch_cgroup (under
<cgroup2 mount>/acceptd-test-PID; a hybrid host has the mount at
/sys/fs/cgroup/unified) and starts acceptd there with a preexec_fn
(into_cgroup), so only the child moves, never the test process.  At a
case's end whatever is left in C is killed (cgroup.kill) and C removed,
children first.  Spawned handlers get into their cgroup two ways - born
there with clone3, or moving themselves before exec
(ACCEPTD_CGROUP_MOVE=1) - and the cases about where they run try both.

What a process runs in is read where it is: a handler writes its own
/proc/self/cgroup (its "0::" line) to the connection; acceptd's and a
worker's are read from /proc/PID/cgroup.

An escaping handler (esc.sh) double-forks a `setsid sleep` - in a session
of its own, reparented away from the handler, holding none of the
connection's fds - and reports that grandchild's pid; it then exits at
once, holds the connection until the client's EOF, or holds it ignoring
SIGTERM (as its grandchild does).  Without --cgroup that grandchild
outlives the handler (checked, so the escape is real); with it, it is
killed when the handler exits, at -t's KILL stage, at the drain's end, and
by the next acceptd after one was SIGKILLed.

Limits: only the controllers the host offers can be tested.  The
reference machine's cgroup2 has hugetlb alone, and only at the root (its
subtree_control, the host's, is left alone), so memory.max and pids.max
are tested on their error path; a real limit is cgroup.max.descendants
(no controller needed: the handler cannot mkdir a child cgroup), and
hugetlb.2MB.max where a C has that file.

The cases need root (writing the cgroup tree); CI runs the tests as root."""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from acceptd_test import (ACCEPTD, Daemon, Skip, case, cgroup2_mount,  # noqa: E402
                          connect, exchange, into_cgroup, notify_socket, pid_dead, proc_children, read_all,
                          run, run_acceptd, scratch_cgroup, stop_pid, tmpdir, wait_counters,
                          wait_until, write_script)

PY = sys.executable
WORKER = os.path.join(HERE, "helpers", "contain_worker.py")
NOBODY = pwd.getpwnam("nobody")
KILL_GRACE = 5          # -t and the drain: SIGTERM, then cgroup.kill 5 s later


# --- the cgroup tree: a C per case ------------------------------------------------

def cgroup_of(pid):
    """The cgroup v2 path ('0::' line) of a process, None once it is gone."""
    try:
        with open("/proc/%s/cgroup" % pid) as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].rstrip("\n")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def mount():
    return cgroup2_mount()


def read(directory, name):
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def write(directory, name, text):
    with open(os.path.join(directory, name), "w") as f:
        f.write(text)


def rel(path):
    """A directory's cgroup path as /proc/PID/cgroup names it."""
    return "/" + os.path.relpath(path, mount())


def kids(cg, prefix=("conn-", "worker-")):
    """The names of C's child cgroups starting with prefix."""
    try:
        return sorted(n for n in os.listdir(cg)
                      if n.startswith(prefix) and os.path.isdir(os.path.join(cg, n)))
    except FileNotFoundError:
        return []


def populated(cg):
    try:
        return "populated 1" in read(cg, "cgroup.events").splitlines()
    except FileNotFoundError:
        return False


def remove_tree(cg, timeout=10):
    """Kill everything in cg and below (cgroup.kill), then rmdir it,
    children first."""
    if not os.path.isdir(cg):
        return
    try:
        write(cg, "cgroup.kill", "1")
    except OSError:
        pass
    wait_until(lambda: not populated(cg), timeout, "%s to empty" % cg)

    def rmdirs():
        for top, dirs, _files in os.walk(cg, topdown=False):
            for d in dirs:
                try:
                    os.rmdir(os.path.join(top, d))
                except FileNotFoundError:
                    pass
                except OSError:
                    return False
        try:
            os.rmdir(cg)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True
    wait_until(rmdirs, timeout, "%s to be removed" % cg, interval=0.05)


_offered = []


class Cgroup:
    """`with Cgroup() as cg:` - a fresh cgroup C for one case
    (acceptd_test.scratch_cgroup, or a sibling of it named `name`), with
    every controller the run's parent has offered to it.  At the end
    whatever runs in C is killed - acceptd too: a stop need not wait for
    a drain; the harness then reaps each Daemon - and C removed."""

    def __init__(self, name=None):
        self.name = name

    def __enter__(self):
        path = scratch_cgroup()
        top = os.path.dirname(path)
        # The test process never moves: only the children it starts do.
        assert not (cgroup_of(os.getpid()) or "").startswith(rel(top)), \
            "the test process is in %s" % cgroup_of(os.getpid())
        if not _offered:
            # What the run's parent has (never the root's own
            # subtree_control: that is the host's), offered to each C.
            ctl = read(top, "cgroup.controllers").split()
            if ctl:
                write(top, "cgroup.subtree_control", " ".join("+" + c for c in ctl))
            _offered.append(ctl)
        if self.name:
            os.rmdir(path)
            path = os.path.join(top, self.name)
            os.mkdir(path)
        self.path = path
        return self

    def __exit__(self, *exc):
        try:
            remove_tree(self.path)
        finally:
            Daemon.stop_all()
        return False

    def join(self, name=None):
        """A preexec_fn: the child (after fork, before exec) moves itself
        into C, or C/name."""
        return into_cgroup(os.path.join(self.path, name or ""))

    def acceptd(self, args, **kw):
        """A Daemon started in C."""
        return Daemon(args, preexec_fn=self.join(), **kw)

    def rel(self, name=None):
        return rel(self.path if name is None else os.path.join(self.path, name))


# The two ways a spawned handler gets into its cgroup: born there (clone3
# CLONE_INTO_CGROUP), or the vfork child moving itself before exec (the
# fallback where clone3 is filtered; ACCEPTD_CGROUP_MOVE=1 asks for it).
PATHS = (("clone3", {}), ("move", {"ACCEPTD_CGROUP_MOVE": "1"}))


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root: the cgroup tree is root's")


# --- handlers ---------------------------------------------------------------

# esc.sh MODE: report its cgroup, pid, uid and a grandchild that escaped
# (double fork + setsid, reparented, its fds on /dev/null), then by MODE:
# exit at once; hold until the client's EOF; or hold-term: the same,
# ignoring SIGTERM, as the grandchild then does too (inherited across
# the forks and the exec).  The grandchild's pid comes back through a
# pipe that closes when it execs sleep, so the handler cannot end
# before it exists.
ESC = r"""#!/bin/sh
[ "$1" = hold-term ] && trap '' TERM
gc=$( (setsid sh -c 'echo $$; exec sleep 1000 </dev/null >/dev/null 2>&1' &) )
echo "cg $(sed -n 's/^0:://p' /proc/self/cgroup) pid $$ uid $(id -u) gc $gc"
[ "$1" = exit ] && exit 0
while read -r line; do :; done
"""

# lim.sh MOUNT KEY...: each KEY's value in its own cgroup, then whether
# it may make a child cgroup there (cgroup.max.descendants).
LIM = r"""#!/bin/sh
cg=$1$(sed -n 's/^0:://p' /proc/self/cgroup)
shift
for k; do echo "$k=$(cat "$cg/$k")"; done
if mkdir "$cg/sub" 2>/dev/null; then rmdir "$cg/sub"; echo mkdir=ok; else echo mkdir=refused; fi
"""

# nest.sh MOUNT: makes a cgroup inside its own (its user owns it: the
# same as acceptd's), starts an escaping grandchild there, reports as
# esc.sh does and exits.
NEST = r"""#!/bin/sh
cg=$1$(sed -n 's/^0:://p' /proc/self/cgroup)
mkdir "$cg/sub" || exit 1
gc=$( (setsid sh -c 'echo $$ > "$1/sub/cgroup.procs" && echo $$ && exec sleep 1000 \
      </dev/null >/dev/null 2>&1' x "$cg" &) )
echo "cg $(sed -n 's/^0:://p' /proc/self/cgroup) pid $$ uid $(id -u) gc $gc"
"""

# A wait-mode datagram handler: one datagram, answered with its cgroup and
# the pid of a grandchild that escaped (double fork, setsid).
DGRAM = r"""
import os, socket
s = socket.socket(fileno=0)
data, peer = s.recvfrom(65536)
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, b"%d" % os.getpid())
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, 1024)
        os.execvp("sleep", ["sleep", "1000"])
    os._exit(0)
os.close(w)
gc = int(os.read(r, 64))
with open("/proc/self/cgroup") as f:
    cg = [ln[3:].strip() for ln in f if ln.startswith("0::")][0]
s.sendto(("cg %s pid %d gc %d" % (cg, os.getpid(), gc)).encode(), peer)
"""

_scripts = {}


def script(name):
    """A handler's path, in a directory anyone may read (-u nobody)."""
    if not _scripts:
        top = tmpdir()
        os.chmod(top, 0o755)
        _scripts["esc"] = write_script(top, "esc.sh", ESC)
        _scripts["lim"] = write_script(top, "lim.sh", LIM)
        _scripts["nest"] = write_script(top, "nest.sh", NEST)
        _scripts["dgram"] = write_script(top, "dgram.py", "#!%s\n%s" % (PY, DGRAM))
    return _scripts[name]


def esc(mode):
    return ["/bin/sh", script("esc"), mode]


def report(text):
    """esc.sh's line -> {cg, pid, uid, gc}."""
    m = re.search(r"cg (\S+) pid (\d+) uid (\d+) gc (\d+)", text)
    assert m, "not a handler's report: %r" % text
    return {"cg": m.group(1), "pid": int(m.group(2)), "uid": int(m.group(3)),
            "gc": int(m.group(4))}


class Held:
    """A connection to a holding esc.sh: its report read, the socket
    kept.  close() half-closes (the handler's read sees EOF)."""

    def __init__(self, addr):
        self.sock = connect(addr)
        self.file = self.sock.makefile("rb")
        self.rep = report(self.file.readline().decode())

    def __getitem__(self, k):
        return self.rep[k]

    def close(self):
        self.sock.shutdown(socket.SHUT_WR)

    def eof(self, timeout=10):
        self.sock.settimeout(timeout)
        return self.file.read() == b""


def conn_name(cgpath, cg):
    """The last part of a handler's cgroup path, checked to be C/conn-N."""
    m = re.fullmatch(re.escape(cg.rel()) + r"/(conn-(\d+))", cgpath)
    assert m, "handler in %s, want %s/conn-N" % (cgpath, cg.rel())
    return m.group(1)


def gone(cg, name, timeout=5, what=None):
    """Wait until C/name no longer exists."""
    path = os.path.join(cg.path, name)
    wait_until(lambda: not os.path.exists(path), timeout,
               what or "%s to be removed" % path)


def all_dead(*pids, timeout=10, what="processes"):
    wait_until(lambda: all(pid_dead(p) for p in pids), timeout,
               "%s %s to be gone" % (what, list(pids)))


def end_line(d, pid, start=0, timeout=10):
    return d.wait_line(r"end \S+ pid %d (status|killed)" % pid, timeout=timeout, start=start)


def final_status(ns, total, timeout=10):
    """Read NOTIFY_SOCKET messages until a STATUS= says active 0 and
    total `total` (sent after the last handler was reaped: its counts are
    final); returns its fields as {name: int}."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no STATUS= with active 0, total %d within %ss; got %s"
                                 % (total, timeout, seen))
        ns.settimeout(left)
        try:
            msg = ns.recv(4096).decode(errors="replace")
        except socket.timeout:
            continue
        seen.append(msg)
        for ln in msg.splitlines():
            if ln.startswith("STATUS="):
                fields = dict((k, int(v)) for k, v in
                              (f.rsplit(" ", 1) for f in ln[7:].split(", ")) if v.isdigit())
                if fields.get("active") == 0 and fields.get("total") == total:
                    return fields


def sleeper_in(cg):
    """A process of the test's own in C (a foreign one, to acceptd)."""
    return subprocess.Popen(["sleep", "1000"], preexec_fn=cg.join(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def stop_popen(p):
    stop_pid(p.pid, 5)
    p.wait(5)


# --- 1. where each process runs -------------------------------------------------

@case
def handler_runs_in_conn_n_and_acceptd_in_acceptd():
    """A spawned handler (cat of its own /proc/self/cgroup: the process
    acceptd executed) is in C/conn-N, N counting up from 1; acceptd is in
    C/acceptd; a handler's cgroup is removed once it has exited, and the
    end line of a handler that left nothing behind says nothing of a
    cgroup kill.  Both ways in (PATHS)."""
    need_root()
    for how, env in PATHS:
        with Cgroup() as cg:
            d = cg.acceptd(["-v", "--cgroup", "-l", "127.0.0.1:0", "--", "/bin/cat",
                            "/proc/self/cgroup"], extra_env=env)
            addr, = d.listening()
            assert cgroup_of(d.pid) == cg.rel("acceptd"), \
                "acceptd in %s, want %s" % (cgroup_of(d.pid), cg.rel("acceptd"))
            for n in (1, 2, 3):
                text = exchange(addr).decode()
                line = [ln for ln in text.splitlines() if ln.startswith("0::")]
                assert line == ["0::%s" % cg.rel("conn-%d" % n)], \
                    "%s, connection %d: handler's /proc/self/cgroup %r" % (how, n, text)
                gone(cg, "conn-%d" % n)
            m = d.wait_line(r"end \S+ pid \d+ status 0.*")
            assert "cgroup" not in m.group(0), "nothing was left, yet: %s" % m.group(0)
            assert "clone3" not in d.log(), d.log()
            assert kids(cg.path) == [], kids(cg.path)
            assert d.stop() == 0


# --- 2. nothing outlives its handler ----------------------------------------

@case
def escaped_grandchild_is_killed_when_the_handler_exits():
    """Without --cgroup the double-forked, setsid'd sleep outlives its
    handler (the escape is real); with it, it is killed when the handler
    exits, conn-N is removed, the -v end line says leftovers were killed
    through the cgroup, and STATUS= counts it.  Both ways in (PATHS)."""
    need_root()
    with Cgroup() as cg:
        plain = cg.acceptd(["-v", "-l", "127.0.0.1:0", "--"] + esc("exit"))
        addr, = plain.listening()
        rep = report(exchange(addr).decode())
        try:
            end_line(plain, rep["pid"])
            assert not pid_dead(rep["gc"]), "the grandchild died without --cgroup"
        finally:
            stop_pid(rep["gc"], 5)
        plain.stop()

        for how, env in PATHS:
            ns, nspath = notify_socket()
            d = cg.acceptd(["-v", "--cgroup", "-l", "127.0.0.1:0", "--"] + esc("exit"),
                           extra_env=dict(env, NOTIFY_SOCKET=nspath))
            addr, = d.listening()
            for i in range(3):
                mark = len(d.lines)
                rep = report(exchange(addr).decode())
                name = conn_name(rep["cg"], cg)
                all_dead(rep["gc"], what="%s: connection %d's grandchild" % (how, i))
                gone(cg, name)
                m = end_line(d, rep["pid"], start=mark)
                assert "cgroup" in m.string, \
                    "the end line does not say leftovers were killed: %s" % m.string
            st = final_status(ns, 3)
            assert st.get("cgroup kills") == 3, "STATUS: %s, want cgroup kills 3" % st
            assert kids(cg.path) == []
            assert d.stop() == 0
            ns.close()


@case
def timeout_kills_the_whole_cgroup():
    """-t 1, a handler and its escaped grandchild that both ignore SIGTERM:
    the SIGTERM at 1 s leaves the handler running; the KILL stage 5 s
    later kills the cgroup: both gone, conn-N removed, within 1 + 5 s and
    a margin.  The -v end line says -t ended it; STATUS= counts one
    timeout and one cgroup kill (one cgroup, killed once with processes
    in it)."""
    need_root()
    with Cgroup() as cg:
        ns, nspath = notify_socket()
        d = cg.acceptd(["-v", "--cgroup", "-t", "1", "-l", "127.0.0.1:0", "--"] +
                       esc("hold-term"), extra_env={"NOTIFY_SOCKET": nspath})
        addr, = d.listening()
        t0 = time.monotonic()
        h = Held(addr)
        name = conn_name(h["cg"], cg)
        d.wait_line(r"pid %d: running for .* over --timeout; sending SIGTERM" % h["pid"])
        assert not pid_dead(h["pid"]), "the handler ignoring SIGTERM died at the SIGTERM"
        assert not pid_dead(h["gc"]), "the grandchild died at the handler's SIGTERM"
        limit = 1 + KILL_GRACE + 3
        all_dead(h["pid"], h["gc"], timeout=limit - (time.monotonic() - t0),
                 what="handler and grandchild")
        gone(cg, name, timeout=max(0.5, limit - (time.monotonic() - t0)))
        took = time.monotonic() - t0
        assert took >= 1 + KILL_GRACE - 0.5, "all gone after %.1f s, before the KILL stage" % took
        assert h.eof(), "the client did not get EOF"
        m = end_line(d, h["pid"])
        assert "killed by signal 9" in m.string and "(--timeout)" in m.string, m.string
        st = final_status(ns, 1)
        assert st.get("timeouts") == 1 and st.get("cgroup kills") == 1, \
            "STATUS: %s, want timeouts 1, cgroup kills 1 (one handler's cgroup)" % st
        assert kids(cg.path) == []
        assert d.stop() == 0
        ns.close()


@case
def drain_end_kills_every_handler_cgroup_before_exit():
    """--drain 1 and a handler that ignores SIGTERM with a grandchild that
    escaped and does too: SIGTERM to acceptd; the drain ends at 1 s, the
    cgroup kill 5 s later; acceptd exits 0 only then, with no conn-*
    left behind."""
    need_root()
    with Cgroup() as cg:
        d = cg.acceptd(["-v", "--cgroup", "--drain", "1", "-l", "127.0.0.1:0", "--"] +
                       esc("hold-term"))
        addr, = d.listening()
        held = [Held(addr) for _ in range(2)]
        for h in held:
            conn_name(h["cg"], cg)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait(timeout=1 + KILL_GRACE + 4)
        took = time.monotonic() - t0
        assert rc == 0, "exit %d; log:\n%s" % (rc, d.log())
        # Checked at once: acceptd exits only once its cgroups are gone.
        assert kids(cg.path) == [], "left after acceptd exited: %s" % kids(cg.path)
        for h in held:
            assert pid_dead(h["pid"]) and pid_dead(h["gc"]), h.rep
            assert h.eof()
        assert took >= 1 + KILL_GRACE - 0.5, \
            "exited after %.1f s, before the KILL stage (the handlers ignore SIGTERM)" % took
        # C/acceptd, its own leaf, may stay; nothing runs there or in C.
        assert not populated(cg.path), "processes left in %s" % cg.path


@case
def a_cgroup_the_handler_made_in_its_own_goes_too():
    """A handler may make a cgroup inside its conn-N (acceptd's user owns
    it) and leave a grandchild there: that one is killed with the rest
    (cgroup.kill reaches below), conn-N is removed with what is inside,
    and acceptd still stops (exit 0) - it waits for its cgroups to be
    gone, so one it could not remove would hold it for ever."""
    need_root()
    with Cgroup() as cg:
        d = cg.acceptd(["-v", "--cgroup", "--drain", "1", "-l", "127.0.0.1:0", "--",
                        "/bin/sh", script("nest"), mount()])
        addr, = d.listening()
        rep = report(exchange(addr).decode())
        name = conn_name(rep["cg"], cg)
        all_dead(rep["gc"], what="the grandchild in %s/sub" % name)
        gone(cg, name, what="%s, and the sub cgroup its handler made, to be removed" % name)
        d.signal(signal.SIGTERM)
        assert d.wait(timeout=1 + KILL_GRACE + 4) == 0
        assert kids(cg.path) == []


@case
def a_deep_tree_the_handler_made_goes_too():
    """Cgroups nested 100 deep inside conn-N, an empty leaf at the bottom
    (no controller bounds the depth here): all removed, leaves first -
    however deep, with two fds at a time - and acceptd serving a single
    inherited connection (-i, nowait) exits with its handler's status once
    they are gone, rather than waiting for ever."""
    need_root()
    with Cgroup() as cg:
        nest = ('d="$(sed -n \'s/^[^ ]* [^ ]* [^ ]* [^ ]* \\([^ ]*\\) .* - cgroup2 .*/\\1/p\' '
                '/proc/self/mountinfo | head -n 1)$(sed -n \'s/^0:://p\' /proc/self/cgroup)"; '
                'for i in $(seq 100); do d="$d/n"; mkdir "$d" || exit 9; done; exit 3')
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        with lst, socket.create_connection(lst.getsockname()) as client:
            conn, _ = lst.accept()
            with conn:
                d = cg.acceptd(["-v", "-i", "--cgroup", "--", "/bin/sh", "-c", nest],
                               stdin=conn)
            client.shutdown(socket.SHUT_WR)
            assert d.wait(timeout=20) == 3, d.log()
        assert kids(cg.path) == [], kids(cg.path)
        assert not [n for n in os.listdir(cg.path) if n.startswith("conn-")], os.listdir(cg.path)


@case
def a_thousand_connections_leave_no_cgroup_behind():
    """1,000 connections, each a cat of its cgroup: each handler in a
    conn-N of its own, N from 1 to 1000, none failed, and no conn-* left
    once they are reaped."""
    need_root()
    with Cgroup() as cg:
        d = cg.acceptd(["--cgroup", "-l", "127.0.0.1:0", "--", "/bin/cat", "/proc/self/cgroup"])
        addr, = d.listening()
        names = set()
        for _ in range(1000):
            text = exchange(addr).decode()
            line = [ln[3:] for ln in text.splitlines() if ln.startswith("0::")]
            assert len(line) == 1, text
            names.add(conn_name(line[0], cg))
        assert names == {"conn-%d" % n for n in range(1, 1001)}, \
            "%d distinct cgroups; first missing: %s" % (
                len(names), sorted({"conn-%d" % n for n in range(1, 1001)} - names)[:5])
        c = wait_counters(d, active=0)
        assert c["total"] == 1000 and c["failed"] == 0, c
        wait_until(lambda: kids(cg.path) == [], 10, "no conn-* left in %s (left: %s)"
                   % (cg.path, kids(cg.path)))
        assert d.stop() == 0


@case
def end_line_names_the_rlimit_that_ended_a_handler():
    """-v: the end line says when the exit status means an rlimit was hit:
    SIGKILL under --rlimit cpu (soft = hard), SIGXCPU (cpu=1:3), SIGXFSZ
    (fsize: dd writing past it).  A handler killed by a SIGKILL of its
    own making, with no cpu limit, is not blamed on one."""
    need_root()
    out = os.path.join(tmpdir(), "big")
    busy = ["/bin/sh", "-c", "while :; do :; done"]
    problems = []
    with Cgroup() as cg:
        for limit, argv, sig in (
                ("cpu=1", busy, signal.SIGKILL),
                ("cpu=1:3", busy, signal.SIGXCPU),
                ("fsize=1K", ["dd", "if=/dev/zero", "of=" + out, "bs=4096", "count=1"],
                 signal.SIGXFSZ)):
            d = cg.acceptd(["-v", "--cgroup", "--rlimit", limit, "--rlimit", "core=0",
                            "-l", "127.0.0.1:0", "--"] + argv)
            addr, = d.listening()
            with connect(addr, timeout=30) as c:
                c.shutdown(socket.SHUT_WR)
                assert read_all(c) == b""
            m = d.wait_line(r"end \S+ pid \d+ killed by signal (\d+)", timeout=30)
            assert int(m.group(1)) == sig, m.string
            if "--rlimit %s" % limit.split("=")[0] not in m.string:
                problems.append("--rlimit %s: the end line does not say so: %s"
                                % (limit, m.string))
            d.stop()
        d = cg.acceptd(["-v", "--cgroup", "-l", "127.0.0.1:0", "--", "/bin/sh", "-c",
                        "kill -KILL $$"])
        addr, = d.listening()
        exchange(addr)
        m = d.wait_line(r"end \S+ pid \d+ killed by signal 9")
        assert "rlimit" not in m.string, m.string
    assert not problems, "\n".join(problems)


# --- 3. pool workers --------------------------------------------------------------

def live_children(pid):
    return [p for p, state in proc_children(pid) if state not in ("Z", "X")]


def worker_name(pid, cg):
    """The worker-N that pid runs in.  A built-in worker is forked, then
    moves itself in as its first act: wait out that instant (bounded)."""
    rx = re.escape(cg.rel()) + r"/(worker-\d+)"
    wait_until(lambda: re.fullmatch(rx, cgroup_of(pid) or ""), 5,
               "worker pid %d in %s/worker-N" % (pid, cg.rel()))
    return re.fullmatch(rx, cgroup_of(pid)).group(1)


@case
def builtin_workers_run_in_worker_n():
    """-b echo -w 2: each worker in a worker-N of its own; a worker killed
    and restarted gets a new one, and its old one is removed; at the stop
    nothing is left."""
    need_root()
    with Cgroup() as cg:
        d = cg.acceptd(["--cgroup", "-b", "echo", "-w", "2", "-l", "127.0.0.1:0"])
        addr, = d.listening()
        workers = wait_until(lambda: len(live_children(d.pid)) == 2 and live_children(d.pid),
                             what="2 workers")
        names = {w: worker_name(w, cg) for w in workers}
        assert len(set(names.values())) == 2, names
        assert cgroup_of(d.pid) == cg.rel("acceptd")
        assert exchange(addr, b"echo in a cgroup") == b"echo in a cgroup"
        os.kill(workers[0], signal.SIGKILL)
        again = wait_until(lambda: [w for w in live_children(d.pid) if w not in workers],
                           what="a new worker")
        new = worker_name(again[0], cg)
        assert new not in names.values(), "the restarted worker reuses %s" % new
        gone(cg, names[workers[0]])
        assert sorted(kids(cg.path)) == sorted([new, names[workers[1]]]), kids(cg.path)
        assert exchange(addr, b"again") == b"again"
        assert d.stop() == 0
        assert kids(cg.path) == [], "left after the stop: %s" % kids(cg.path)


@case
def fd_passing_workers_run_in_worker_n():
    """--fd-passing PROGRAM -w 2 (helpers/contain_worker.py reports its
    pid through each connection): each worker in a worker-N of its own.
    Both ways in (PATHS)."""
    need_root()
    import json
    for how, env in PATHS:
        with Cgroup() as cg:
            d = cg.acceptd(["--cgroup", "--fd-passing", "-w", "2", "-l", "127.0.0.1:0",
                            "--", PY, WORKER], extra_env=env)
            addr, = d.listening()
            seen = {}
            for _ in range(6):
                pid = json.loads(exchange(addr))["pid"]
                seen[pid] = worker_name(pid, cg)
            workers = wait_until(lambda: len(live_children(d.pid)) == 2 and live_children(d.pid),
                                 what="2 workers")
            assert set(seen) <= set(workers), (seen, workers)
            names = {worker_name(w, cg) for w in workers}
            assert len(names) == 2 and sorted(names) == kids(cg.path), (names, kids(cg.path))
            assert d.stop() == 0
            assert kids(cg.path) == [], "left after the stop: %s" % kids(cg.path)


# --- 4. --cgroup-limit ------------------------------------------------------------

def limit_args(specs):
    out = ["--cgroup"]
    for s in specs:
        out += ["--cgroup-limit", s]
    return out


def lim_report(text):
    return dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln)


@case
def limits_are_written_into_each_handlers_cgroup():
    """cgroup.max.descendants=0 (given 20 times, the last counting) is read
    back by the handler from its own cgroup, and bites: it cannot make a
    child cgroup, which it can without the limit.  hugetlb.2MB.max=0 too
    where a child cgroup has that file.  A built-in worker's cgroup gets
    them as well."""
    need_root()
    with Cgroup() as cg:
        mnt = mount()
        keys = ["cgroup.max.descendants"]
        specs = ["cgroup.max.descendants=%d" % n for n in range(1, 20)] + \
            ["cgroup.max.descendants=0"]
        hugetlb = os.path.exists(os.path.join(cg.path, "hugetlb.2MB.max"))
        if hugetlb:
            keys.append("hugetlb.2MB.max")
            specs.append("hugetlb.2MB.max=0")
        d = cg.acceptd(limit_args(specs) + ["-l", "127.0.0.1:0", "--", "/bin/sh",
                                            script("lim"), mnt] + keys)
        addr, = d.listening()
        rep = lim_report(exchange(addr).decode())
        assert rep.get("cgroup.max.descendants") == "0", rep
        assert rep.get("mkdir") == "refused", rep
        if hugetlb:
            assert rep.get("hugetlb.2MB.max") == "0", rep
            assert "hugetlb" in read(cg.path, "cgroup.subtree_control").split(), \
                "hugetlb is not enabled in %s/cgroup.subtree_control" % cg.path
        d.stop()
        # Without the limit the same handler may make a child cgroup.
        d = cg.acceptd(["--cgroup", "-l", "127.0.0.1:0", "--", "/bin/sh", script("lim"), mnt,
                        "cgroup.max.descendants"])
        addr, = d.listening()
        rep = lim_report(exchange(addr).decode())
        assert rep == {"cgroup.max.descendants": "max", "mkdir": "ok"}, rep
        d.stop()
        d = cg.acceptd(limit_args(["cgroup.max.descendants=0"]) +
                       ["-b", "echo", "-w", "1", "-l", "127.0.0.1:0"])
        d.listening()
        w, = wait_until(lambda: live_children(d.pid), what="the worker")
        assert read(os.path.join(cg.path, worker_name(w, cg)), "cgroup.max.descendants") == "0"


@case
def limits_may_change_at_a_reload():
    """cgroup-limit in a --config file; after a SIGHUP with another value,
    new handlers get the new one."""
    need_root()
    with Cgroup() as cg:
        conf = os.path.join(tmpdir(), "acceptd.conf")

        def write_conf(n):
            with open(conf, "w") as f:
                f.write("listen = 127.0.0.1:0\ncgroup = yes\n"
                        "cgroup-limit = cgroup.max.descendants=%d\n"
                        "exec = /bin/sh %s %s cgroup.max.descendants\n"
                        % (n, script("lim"), mount()))
        write_conf(0)
        d = cg.acceptd(["--config", conf])
        addr, = d.listening()
        assert lim_report(exchange(addr).decode())["cgroup.max.descendants"] == "0"
        write_conf(3)
        mark = len(d.lines)
        d.signal(signal.SIGHUP)
        d.wait_line(r"reload: done", start=mark)
        rep = lim_report(exchange(addr).decode())
        assert rep == {"cgroup.max.descendants": "3", "mkdir": "ok"}, rep


# --- 5. errors -----------------------------------------------------------------------

def one_error(rc_want, args, *needles, **kw):
    """acceptd exits rc_want with one message line (besides listening
    lines) naming each needle; returns it."""
    rc, out, err = run_acceptd(args, **kw)
    msgs = [ln for ln in err if "listening on" not in ln]
    assert rc == rc_want, "%s: exit %d, want %d; stderr %s" % (args, rc, rc_want, err)
    assert len(msgs) == 1, "%s: want one line, got %s" % (args, err)
    assert not any("started acceptd" in ln for ln in err), err
    for n in needles:
        assert n in msgs[0], "%s: %r does not name %r" % (args, msgs[0], n)
    return msgs[0]


SERVE = ["-l", "127.0.0.1:0", "--", "/bin/true"]

BAD_LIMITS = ["nonsense", "=1", "memory.max", "memorymax=1", "memory max=1", ".max=1", "memory.=1",
              "../memory.max=1", "memory/max=1", "cgroup.procs=1", "cgroup.threads=1",
              "cgroup.subtree_control=+memory", "cgroup.kill=1", "cgroup.freeze=1",
              "cgroup.type=threaded", "memory.max=" + "1" * 256, "memory.max=1\n2",
              "memory.max=\x01", "cpuset.mems=0"]


@case
def bad_limits_are_usage_errors():
    """Exit 2, one line naming --cgroup-limit: bad KEY=VALUE forms, one of
    acceptd's own files, a value over 255 bytes or not printable, a 17th
    key, --cgroup-limit without --cgroup (also in a file).  The same key
    20 times, 16 keys and a value of 255 bytes are no usage error (here
    the root cgroup refuses them later, exit 1)."""
    problems = []

    def usage(args, needle):
        try:
            one_error(2, args, needle)
        except AssertionError as e:
            problems.append(str(e))
    for spec in BAD_LIMITS:
        usage(["--cgroup", "--cgroup-limit", spec] + SERVE, "--cgroup-limit")
    usage(limit_args(["k%d.max=1" % i for i in range(17)]) + SERVE, "--cgroup-limit")
    usage(["--cgroup-limit", "cgroup.max.descendants=1"] + SERVE, "--cgroup-limit")
    conf = os.path.join(tmpdir(), "acceptd.conf")
    for body in ("cgroup-limit = cgroup.max.descendants=1\n",
                 "cgroup = yes\ncgroup-limit = nonsense\n"):
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:0\nexec = /bin/true\n" + body)
        usage(["--config", conf], "cgroup-limit")
    if cgroup_of(os.getpid()) == "/":
        for args in (limit_args(["k%d.max=1" % i for i in range(16)]),
                     limit_args(["cgroup.max.descendants=%d" % i for i in range(20)]),
                     limit_args(["hugetlb.2MB.max=0"]), limit_args(["k.max=" + "x" * 255])):
            rc, _, err = run_acceptd(args + SERVE)
            if not (rc == 1 and any("--cgroup:" in ln for ln in err)):
                problems.append("%s...: exit %d, want 1 (the root cgroup); %s"
                                % (args[:3], rc, err))
    assert not problems, "\n".join(problems)


@case
def started_in_the_root_cgroup_exits_1():
    """Nothing is delegated to a process in the root cgroup: the test
    runner is there (as in CI), and acceptd started from it exits 1."""
    need_root()
    if cgroup_of(os.getpid()) != "/":
        raise Skip("the test process is in %s, not the root cgroup" % cgroup_of(os.getpid()))
    msg = one_error(1, ["--cgroup"] + SERVE)
    assert msg.startswith("acceptd: --cgroup: "), msg


@case
def limits_the_cgroup_cannot_take_exit_1():
    """A key whose controller C's cgroup.controllers lacks (memory.max,
    pids.max), and a value the kernel refuses (tried on a scratch
    cgroup, removed again): exit 1, the line naming the key."""
    need_root()
    with Cgroup() as cg:
        have = read(cg.path, "cgroup.controllers").split()
        for key, value in (("memory.max", "1G"), ("pids.max", "10"), ("cpu.max", "max"),
                           ("io.max", "8:0 rbps=1")):
            ctl = key.split(".")[0]
            if ctl in have:
                continue
            msg = one_error(1, limit_args(["%s=%s" % (key, value)]) + SERVE, key,
                            preexec_fn=cg.join())
            assert msg.startswith("acceptd: --cgroup"), msg
            assert re.search(r"\b%s\b" % ctl, msg), "%r does not name the controller" % msg
        for spec in ("cgroup.max.descendants=banana", "cgroup.max.descendants=-1"):
            msg = one_error(1, limit_args([spec]) + SERVE, "cgroup.max.descendants",
                            preexec_fn=cg.join())
            assert msg.startswith("acceptd: --cgroup"), msg
            assert not os.path.exists(os.path.join(cg.path, "acceptd-check")), \
                "the scratch cgroup was left behind"
        assert kids(cg.path) == []


@case
def no_cgroup2_mounted_exits_1():
    """In a mount namespace of its own without the cgroup2 mount (unshare
    -m, then umount): exit 1, "--cgroup: ..."."""
    need_root()
    if not mount():
        raise Skip("no cgroup2 mounted")
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed"
    prefix = [unshare, "-m", "--propagation", "private", "/bin/sh", "-c",
              'umount "$1" && shift && exec "$@"', "sh", mount(), ACCEPTD]
    msg = one_error(1, ["--cgroup"] + SERVE, argv0=prefix)
    assert msg.startswith("acceptd: --cgroup: ") and "v2" in msg, msg


@case
def a_second_acceptd_in_the_same_cgroup_exits_1():
    """Another acceptd already in C/acceptd: the second exits 1 and leaves
    the first's handlers and their cgroups alone."""
    need_root()
    with Cgroup() as cg:
        d = cg.acceptd(["--cgroup", "-l", "127.0.0.1:0", "--"] + esc("hold"))
        addr, = d.listening()
        h = Held(addr)
        name = conn_name(h["cg"], cg)
        msg = one_error(1, ["--cgroup"] + SERVE, preexec_fn=cg.join())
        assert msg.startswith("acceptd: --cgroup: "), msg
        assert not pid_dead(h["pid"]) and not pid_dead(h["gc"]), "the first one's handler died"
        assert cgroup_of(h["pid"]) == h["cg"] and os.path.isdir(os.path.join(cg.path, name))
        assert cgroup_of(d.pid) == cg.rel("acceptd")
        h.close()
        all_dead(h["pid"], h["gc"])
        gone(cg, name)


@case
def unwritable_or_undelegated_cgroups_exit_1():
    """acceptd as nobody in a C of root's: not writable, exit 1.  A C named
    like a systemd unit (x.service) without the trusted.delegate xattr:
    exit 1; with it (Delegate=yes), it starts."""
    need_root()
    with Cgroup() as cg:
        join = cg.join()

        def as_nobody():
            join()
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
        msg = one_error(1, ["--cgroup"] + SERVE, preexec_fn=as_nobody)
        assert msg.startswith("acceptd: --cgroup: "), msg
    with Cgroup("acceptd-test-%d.service" % os.getpid()) as cg:
        msg = one_error(1, ["--cgroup"] + SERVE, preexec_fn=cg.join())
        assert msg.startswith("acceptd: --cgroup: ") and "deleg" in msg.lower(), msg
        os.setxattr(cg.path, "trusted.delegate", b"1")
        d = cg.acceptd(["--cgroup", "-l", "127.0.0.1:0", "--", "/bin/cat", "/proc/self/cgroup"])
        addr, = d.listening()
        assert "0::%s/conn-1" % cg.rel() in exchange(addr).decode()


@case
def other_processes_in_c_exit_1():
    """C must hold nothing but acceptd's own: cgroup v2 lets whoever may
    write a common ancestor's cgroup.procs move any process, so a handler
    could pull another process of C into its own cgroup, to be killed with
    it.  With another process in C itself, or in a sub-cgroup that is not
    acceptd's, acceptd exits 1 saying so, and the other process lives on.
    An empty foreign sub-cgroup and an empty conn-N do not count."""
    need_root()
    with Cgroup() as cg:
        other = sleeper_in(cg)
        try:
            msg = one_error(1, ["--cgroup"] + SERVE, preexec_fn=cg.join())
            assert msg.startswith("acceptd: --cgroup: %s holds other processes too (pid %d)"
                              % (cg.path, other.pid)), msg
            assert other.poll() is None, "the other process was touched"
        finally:
            stop_popen(other)
    with Cgroup() as cg:
        os.mkdir(os.path.join(cg.path, "elsewhere"))
        other = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL,
                                 preexec_fn=cg.join("elsewhere"))
        try:
            msg = one_error(1, ["--cgroup"] + SERVE, preexec_fn=cg.join())
            assert msg.startswith("acceptd: --cgroup: %s/elsewhere holds processes that "
                                  "are not acceptd's" % cg.path), msg
            assert other.poll() is None, "the other process was touched"
        finally:
            stop_popen(other)
        wait_until(lambda: rmdir_ok(os.path.join(cg.path, "elsewhere")), 10,
                   "elsewhere/ empty")
        d = cg.acceptd(["--cgroup", "-l", "127.0.0.1:0", "--", "/bin/cat", "/proc/self/cgroup"])
        addr, = d.listening()
        assert "0::%s/conn-1" % cg.rel() in exchange(addr).decode()
        assert d.stop() == 0


def rmdir_ok(path):
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


# --- 6. reloads, users, datagrams, orphans --------------------------------------

@case
def reload_keeps_handlers_in_their_cgroups():
    """--config with cgroup = yes and timeout = 5.  Two holding handlers
    (with escaped grandchildren); SIGHUP: the same acceptd pid, both still
    in their cgroups.  One ends by its own exit after the reload (its
    grandchild killed, its cgroup removed by the new image), the other by
    -t (SIGTERM ends it; its grandchild is killed with it).  N goes on
    counting across the reload.  A reload whose file turns --cgroup off is
    refused and logged; the old image serves on, in cgroups."""
    need_root()
    with Cgroup() as cg:
        conf = os.path.join(tmpdir(), "acceptd.conf")

        def write_conf(on):
            with open(conf, "w") as f:
                f.write("listen = 127.0.0.1:0\ncgroup = %s\ntimeout = 5\nverbose = yes\n"
                        "exec = /bin/sh %s hold\n" % ("yes" if on else "no", script("esc")))
        write_conf(True)
        d = cg.acceptd(["--config", conf])
        addr, = d.listening()
        a, b = Held(addr), Held(addr)
        names = [conn_name(a["cg"], cg), conn_name(b["cg"], cg)]
        assert names == ["conn-1", "conn-2"], names
        mark = len(d.lines)
        d.signal(signal.SIGHUP)
        d.wait_line(r"reload: done", start=mark)
        assert d.proc.poll() is None
        for h in (a, b):
            assert cgroup_of(h["pid"]) == h["cg"] and cgroup_of(h["gc"]) == h["cg"], h.rep
        assert cgroup_of(d.pid) == cg.rel("acceptd")
        # Its own exit, after the reload.
        a.close()
        all_dead(a["pid"], a["gc"], what="the first handler and its grandchild")
        gone(cg, names[0])
        assert a.eof()
        # A new connection: the count went on.
        c = Held(addr)
        assert conn_name(c["cg"], cg) == "conn-3", c.rep
        c.close()
        all_dead(c["pid"], c["gc"])
        # -t, in the new image, for a handler of the old one.
        d.wait_line(r"pid %d: running for .* over --timeout; sending SIGTERM" % b["pid"],
                    start=mark)
        all_dead(b["pid"], b["gc"], timeout=KILL_GRACE + 3,
                 what="the second handler and its grandchild")
        gone(cg, names[1])
        # --cgroup cannot be turned off by a reload.
        write_conf(False)
        mark = len(d.lines)
        d.signal(signal.SIGHUP)
        d.wait_line(r"reload: --cgroup\b.*still serving", start=mark)
        e = Held(addr)
        assert conn_name(e["cg"], cg) == "conn-4", e.rep
        assert not any("reload: done" in ln for ln in d.lines[mark:]), d.log()
        assert cgroup_of(d.pid) == cg.rel("acceptd")
        e.close()
        all_dead(e["pid"], e["gc"])
        wait_until(lambda: kids(cg.path) == [], 5, "no conn-* left")


@case
def user_nobody_handlers_in_their_cgroups():
    """-u nobody (acceptd started as root): C and C/acceptd are handed to
    nobody before the drop (as systemd does for User= with Delegate=yes);
    handlers run as nobody in their conn-N, and what they leave is still
    killed and their cgroups removed, at their exit and at -t.  Both ways in
    (PATHS)."""
    need_root()
    for how, env in PATHS:
        with Cgroup() as cg:
            d = cg.acceptd(["-v", "--cgroup", "-u", "nobody", "-t", "2", "-l", "127.0.0.1:0",
                            "--"] + esc("hold"), extra_env=env)
            addr, = d.listening()
            uid = NOBODY.pw_uid
            for path in (cg.path, os.path.join(cg.path, "cgroup.procs"),
                         os.path.join(cg.path, "cgroup.threads"),
                         os.path.join(cg.path, "cgroup.subtree_control"),
                         os.path.join(cg.path, "acceptd")):
                owner = os.stat(path).st_uid
                assert owner == uid, "%s owned by uid %d" % (path, owner)
            a = Held(addr)
            assert a["uid"] == uid, a.rep
            assert os.stat("/proc/%d" % a["gc"]).st_uid == uid
            name = conn_name(a["cg"], cg)
            a.close()
            all_dead(a["pid"], a["gc"])
            gone(cg, name)
            b = Held(addr)          # ends at -t: SIGTERM ends it, the cgroup its grandchild
            name = conn_name(b["cg"], cg)
            all_dead(b["pid"], b["gc"], timeout=2 + KILL_GRACE + 3)
            gone(cg, name)
            assert d.stop() == 0


@case
def datagram_handler_in_conn_n():
    """A wait-mode datagram handler (-l udp:, PROGRAM) starts in a conn-N
    of its own; its escaped grandchild is killed when it exits, and the
    cgroup removed; the next datagram's handler gets the next one.  Both
    ways in (PATHS)."""
    need_root()
    for how, env in PATHS:
        with Cgroup() as cg:
            d = cg.acceptd(["-v", "--cgroup", "-l", "udp:127.0.0.1:0", "--", script("dgram")],
                           extra_env=env)
            name, = d.listening()
            m = re.fullmatch(r"udp:127\.0\.0\.1:(\d+)", name)
            assert m, name
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.bind(("127.0.0.1", 0))
                c.settimeout(10)
                for n in (1, 2):
                    c.sendto(b"where?", ("127.0.0.1", int(m.group(1))))
                    rep = re.fullmatch(r"cg (\S+) pid (\d+) gc (\d+)", c.recv(4096).decode())
                    assert rep, "answer %r" % rep
                    assert rep.group(1) == cg.rel("conn-%d" % n), (how, rep.group(0))
                    all_dead(int(rep.group(2)), int(rep.group(3)))
                    gone(cg, "conn-%d" % n)


@case
def orphans_of_a_killed_acceptd_are_killed_at_the_next_start():
    """acceptd SIGKILLed with a handler running, whose grandchild escaped:
    both stay in conn-N.  A worker-N with a process in it is left too (one
    the test makes: a worker of a dead acceptd, as far as the next one
    can tell), and an empty conn-N.  The next acceptd in the same C kills
    and removes those cgroups, saying so for the ones that held
    processes; then serves."""
    need_root()
    with Cgroup() as cg:
        d = cg.acceptd(["--cgroup", "-l", "127.0.0.1:0", "--"] + esc("hold"))
        addr, = d.listening()
        h = Held(addr)
        name = conn_name(h["cg"], cg)
        d.signal(signal.SIGKILL)
        d.wait()
        assert not pid_dead(h["pid"]) and not pid_dead(h["gc"])
        assert os.path.isdir(os.path.join(cg.path, name))
        os.mkdir(os.path.join(cg.path, "worker-7"))
        os.mkdir(os.path.join(cg.path, "conn-9"))
        worker = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL,
                                  preexec_fn=cg.join("worker-7"))
        try:
            d2 = cg.acceptd(["--cgroup", "-l", "127.0.0.1:0", "--"] + esc("exit"))
            addr, = d2.listening()
            all_dead(h["pid"], h["gc"], what="the orphaned handler and its grandchild")
            wait_until(lambda: worker.poll() is not None, 10, "the orphaned worker to die")
            for left in (name, "worker-7", "conn-9"):
                gone(cg, left)
            for left in (name, "worker-7"):
                assert re.search(re.escape(left) + r"\b", d2.log()), \
                    "%s not logged:\n%s" % (left, d2.log())
        finally:
            stop_popen(worker)
        assert h.eof()
        rep = report(exchange(addr).decode())
        conn_name(rep["cg"], cg)
        all_dead(rep["gc"])
        wait_until(lambda: kids(cg.path) == [], 5, "no conn-* left")
        assert d2.stop() == 0


if __name__ == "__main__":
    run()
