"""robustness.py - acceptd under hostile conditions, with real processes
and sockets: odd signal, fd and rlimit state inherited from whatever
started it (handlers and workers still start clean, SIGTERM still stops
it); kill -9 of acceptd while handlers run (a restart binds the same port
at once, the orphaned handlers serve on and finish); a thousand clients
that reset while they wait in the listen backlog; five hundred handlers
that exit at the same instant (no zombie, counters back to 0).

The long versions (100,000 sequential connections, a 60 s soak with
resetting clients) are in tests/long/, run by `make check-long`."""
import ctypes
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys

os.environ.setdefault("ACCEPTD_CASE_TIMEOUT", "120")    # 500 handlers under ASan
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (fd_targets, Daemon, Skip, case, connect, counters, exchange,  # noqa: E402
                          fd_count, parse_addr, pid_dead, proc_children, proc_stat,
                          proc_status, read_all, reset_client, run, sigset_of, tmpdir,
                          wait_counters, wait_until)

C_WORKER = os.environ.get("ACCEPTD_C_WORKER")


def port_of(addr):
    return parse_addr(addr)[1][1]


def live_children(pid):
    return [p for p, st in proc_children(pid) if st not in ("Z", "X")]


def handler_pid(d, client, start=0):
    """The pid acceptd logged (-v) for the connection of socket client."""
    port = client.getsockname()[1]
    return int(d.wait_line(r"connection 127\.0\.0\.1:%d on \S+ (?:worker )?pid (\d+)$"
                           % port, start=start).group(1))


def soft_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for ln in f:
            if ln.startswith("Max open files"):
                return int(ln.split()[3])
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


# --- odd inherited state ---------------------------------------------------

IGNORED = (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2, signal.SIGALRM)
BLOCKED = (signal.SIGTERM, signal.SIGCHLD, signal.SIGQUIT, signal.SIGWINCH,
           signal.SIGRTMIN + 2)
# Blocked by the parent and not by acceptd itself: visible in acceptd's
# own SigBlk, which proves the odd state really was inherited.
BLOCKED_NOT_BY_ACCEPTD = {signal.SIGQUIT, signal.SIGWINCH, signal.SIGRTMIN + 2}


def odd_state(ignored, blocked, nofile_soft):
    """A preexec_fn: signals ignored and blocked as given, a low soft
    RLIMIT_NOFILE (the hard limit stays)."""
    def pre():
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, set(blocked))
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile_soft, hard))
    return pre


class ExtraFds:
    """Non-CLOEXEC fds acceptd inherits for no reason: a pipe's write end
    and /dev/null, one of them numbered above the low soft RLIMIT_NOFILE
    acceptd is given."""

    left = []           # instances a failed case did not close

    def __init__(self, high=100):
        import fcntl
        while ExtraFds.left:
            ExtraFds.left[0].close()
        ExtraFds.left.append(self)
        self.r, w = os.pipe()
        null = os.open("/dev/null", os.O_RDONLY)
        self.w = fcntl.fcntl(w, fcntl.F_DUPFD, 9)
        self.null = fcntl.fcntl(null, fcntl.F_DUPFD, high)
        os.close(w)
        os.close(null)
        self.fds = (self.w, self.null)

    def close_write(self):
        """Once acceptd has started: it holds the only other write end."""
        if self.w is not None:
            os.close(self.w)
            self.w = None

    def close(self):
        self.close_write()
        if self in ExtraFds.left:
            ExtraFds.left.remove(self)
            for fd in (self.r, self.null):
                os.close(fd)


def assert_inherited(pid, ignored, blocked_visible, extra):
    """Precondition: acceptd itself runs with the odd state."""
    st = proc_status(pid)
    assert set(ignored) <= sigset_of(st, "SigIgn"), ("acceptd SigIgn", st["SigIgn"])
    assert blocked_visible <= sigset_of(st, "SigBlk"), ("acceptd SigBlk", st["SigBlk"])
    assert set(extra.fds) <= set(fd_targets(pid)), fd_targets(pid)


def assert_clean(pid, fds, may_ignore=(), own_epoll=False):
    """A handler or worker: empty mask, nothing ignored (but may_ignore),
    exactly the fds numbered in fds (and, for a built-in worker, the epoll
    fd it makes itself)."""
    st = proc_status(pid)
    blk, ign = sigset_of(st, "SigBlk"), sigset_of(st, "SigIgn")
    assert not blk, "pid %d (%s) starts with signals %s blocked" % (
        pid, st["Name"].strip(), sorted(blk))
    assert ign <= set(may_ignore), "pid %d (%s) ignores signals %s" % (
        pid, st["Name"].strip(), sorted(ign - set(may_ignore)))
    targets = fd_targets(pid)
    got = sorted(fd for fd, what in targets.items()
                 if not (own_epoll and fd not in fds and what == "anon_inode:[eventpoll]"))
    assert got == sorted(fds), "pid %d (%s) has fds %s, want %s: %s" % (
        pid, st["Name"].strip(), got, sorted(fds), targets)


@case
def odd_inherited_state_spawn_handlers_start_clean():
    """SIGPIPE, SIGINT, SIGHUP & co. ignored, SIGTERM, SIGCHLD & co.
    blocked, soft RLIMIT_NOFILE 64, stray fds 9 and 100: every handler
    still gets an empty mask, default dispositions and fds 0-2 only;
    concurrent handlers are reaped; SIGTERM still stops acceptd."""
    extra = ExtraFds()
    try:
        d = Daemon(["-v", "-l", "127.0.0.1:0", "--", "/bin/cat"], pass_fds=extra.fds,
                   preexec_fn=odd_state(IGNORED, BLOCKED, 64))
    finally:
        extra.close_write()
    addr, = d.listening()
    assert_inherited(d.pid, IGNORED, BLOCKED_NOT_BY_ACCEPTD, extra)
    # acceptd marked them close-on-exec at start (not only close_range in
    # the spawn path, which kernels before 5.9 lack).
    for fd in extra.fds:
        with open("/proc/%d/fdinfo/%d" % (d.pid, fd)) as f:
            flags = int(re.search(r"^flags:\s+([0-7]+)", f.read(), re.M).group(1), 8)
        assert flags & os.O_CLOEXEC, "inherited fd %d of acceptd not close-on-exec" % fd
    err_pipe = os.readlink("/proc/%d/fd/2" % d.pid)
    clients = [connect(addr) for _ in range(20)]
    pids = [handler_pid(d, c) for c in clients]
    for pid, c in zip(pids, clients):
        # Once it echoes, cat is past its own start (locale files it opens
        # and closes) and waits in read(2).
        c.sendall(b"?")
        assert c.recv(1) == b"?"
        assert_clean(pid, (0, 1, 2))
        fds = fd_targets(pid)
        assert fds[0] == fds[1] and fds[0].startswith("socket:"), fds
        assert fds[2] == err_pipe, (fds, err_pipe)
        assert proc_stat(pid)[1] == d.pid, proc_stat(pid)
    for i, c in enumerate(clients):
        c.sendall(b"%d" % i)
        c.shutdown(socket.SHUT_WR)
        assert read_all(c) == b"%d" % i
        c.close()
    # SIGCHLD was blocked when acceptd started: every end is still seen.
    wait_counters(d, active=0, total=20, failed=0)
    wait_until(lambda: not proc_children(d.pid), 10, "no children of acceptd")
    # SIGTERM was blocked when it started: it still stops, draining first.
    held = connect(addr)
    held.sendall(b"a")
    assert held.recv(1) == b"a"
    mark = len(d.lines)
    d.signal(signal.SIGTERM)
    d.wait_line(r"SIGTERM: stopping; 1 connection\(s\) open", start=mark)
    held.sendall(b"b")
    assert held.recv(1) == b"b", "the running handler was not left to finish"
    held.close()
    assert d.wait(15) == 0, d.log()
    extra.close()


@case
def odd_inherited_state_pool_workers_start_clean():
    """The same state, SIGTERM ignored instead of blocked, one built-in
    worker: the soft RLIMIT_NOFILE of 64 is raised so that -c 100 fits
    (100 connections at once in that one worker are served), the worker
    has its channel and fds 0-2 only, an empty mask, and ignores nothing
    but the SIGPIPE it sets itself; SIGTERM still stops acceptd."""
    ignored = IGNORED + (signal.SIGTERM,)
    blocked = tuple(s for s in BLOCKED if s != signal.SIGTERM)
    extra = ExtraFds()
    try:
        d = Daemon(["-v", "-b", "echo", "-w", "1", "-c", "100", "-l", "127.0.0.1:0"],
                   pass_fds=extra.fds, preexec_fn=odd_state(ignored, blocked, 64))
    finally:
        extra.close_write()
    addr, = d.listening()
    worker = int(d.wait_line(r"worker 0 pid (\d+) ready").group(1))
    assert_inherited(d.pid, ignored, BLOCKED_NOT_BY_ACCEPTD, extra)
    assert soft_nofile(d.pid) > 100, soft_nofile(d.pid)
    # CH_FD is 3: the channel; the worker sets SIGPIPE to SIG_IGN itself.
    assert_clean(worker, (0, 1, 2, 3), may_ignore=(signal.SIGPIPE,), own_epoll=True)
    assert fd_targets(worker)[3].startswith("socket:"), fd_targets(worker)
    sel = selectors.DefaultSelector()
    socks = [connect(addr) for _ in range(100)]
    for i, c in enumerate(socks):
        c.sendall(b"<%d>" % i)
        sel.register(c, selectors.EVENT_READ, i)
    got = {}

    def collect():
        for key, _ in sel.select(0.1):
            b = key.fileobj.recv(64)
            assert b, "connection %d closed unanswered\n%s" % (key.data, d.log())
            got[key.data] = got.get(key.data, b"") + b
            if got[key.data] == b"<%d>" % key.data:
                sel.unregister(key.fileobj)
        return sum(1 for i, v in got.items() if v == b"<%d>" % i) == 100
    wait_until(collect, 20, "100 echo replies from one worker", interval=0)
    assert fd_count(worker) >= 100 + 4, "the worker does not hold the 100 connections?"
    for c in socks:
        c.close()
    wait_counters(d, active=0, total=100, failed=0)
    # SIGTERM was ignored when acceptd started: it still stops on it.
    assert d.stop(timeout=15) == 0, d.log()
    assert "SIGTERM: stopping" in d.log(), d.log()
    extra.close()


@case
def odd_inherited_state_persistent_worker_starts_clean():
    if not C_WORKER or not os.path.exists(C_WORKER):
        raise Skip("ACCEPTD_C_WORKER not built (run through make check)")
    extra = ExtraFds()
    try:
        d = Daemon(["-v", "--fd-passing", "-w", "1", "-l", "127.0.0.1:0", "--", C_WORKER],
                   pass_fds=extra.fds, preexec_fn=odd_state(IGNORED, BLOCKED, 64))
    finally:
        extra.close_write()
    addr, = d.listening()
    worker = int(d.wait_line(r"worker 0 pid (\d+) ready").group(1))
    assert_inherited(d.pid, IGNORED, BLOCKED_NOT_BY_ACCEPTD, extra)
    # echo-worker ignores SIGPIPE itself (acceptd-workers(7) asks workers
    # to); every other inherited disposition must be gone.
    assert_clean(worker, (0, 1, 2, 3), may_ignore=(signal.SIGPIPE,))
    c = connect(addr)
    assert c.recv(100).startswith(b"worker %d:" % worker)
    c.close()
    wait_counters(d, active=0, total=1)
    assert d.stop() == 0, d.log()
    extra.close()


@case
def sigchld_ignored_at_start_handlers_still_reaped():
    """Started with SIGCHLD at SIG_IGN (exec keeps it so), acceptd would
    have its handlers reaped by the kernel, unseen, and no SIGCHLD sent.
    It must still see every end - the counters drop, -c 2 lets the next
    clients in, -v logs each exit status - and its handlers get SIGCHLD at
    SIG_DFL.  (Before src/signals.c took SIGCHLD back to SIG_DFL, the third
    client waited for ever.)"""
    pre = odd_state((signal.SIGCHLD,), (), 1024)
    # The precondition, shown by a program that changes nothing itself
    # (acceptd, fixed, takes SIGCHLD back at once).
    ctl = subprocess.run(["/bin/cat", "/proc/self/status"], preexec_fn=pre,
                         capture_output=True, text=True, timeout=10).stdout
    assert signal.SIGCHLD in sigset_of(dict(ln.split(":", 1) for ln in ctl.splitlines()
                                            if ":" in ln), "SigIgn"), ctl
    d = Daemon(["-v", "-c", "2", "-l", "127.0.0.1:0", "--", "/bin/cat"], preexec_fn=pre)
    addr, = d.listening()
    c = connect(addr)
    c.sendall(b"?")
    assert c.recv(1) == b"?"            # cat is past its own start
    assert_clean(handler_pid(d, c), (0, 1, 2))
    c.close()
    for i in range(5):
        assert exchange(addr, b"%d" % i, timeout=5) == b"%d" % i, i
    wait_counters(d, active=0, total=6, timeout=5)
    assert len(re.findall(r"^acceptd: end 127\.0\.0\.1:\d+ pid \d+ status 0 ", d.log(),
                          re.M)) == 6, d.log()
    assert d.stop() == 0


# --- kill -9 while handlers run ---------------------------------------------

PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on):
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0


@case
def kill9_restart_binds_at_once_orphans_finish():
    """acceptd dies by SIGKILL with three handlers serving: a new acceptd
    binds the same port at once (the old connections still hold it:
    without SO_REUSEADDR that bind fails, as a bare socket shows) and
    serves; the orphaned handlers go on serving their clients, untouched
    by the new acceptd and by its stop, and exit 0 when their clients
    close.  This process is their subreaper, so it collects their status."""
    if not set_subreaper(True):
        raise Skip("prctl(PR_SET_CHILD_SUBREAPER) failed")
    orphans = []
    try:
        d = Daemon(["-v", "-l", "127.0.0.1:0", "--", "/bin/cat"])
        addr, = d.listening()
        port = port_of(addr)
        held = [connect(addr) for _ in range(3)]
        orphans = [handler_pid(d, c) for c in held]
        for i, c in enumerate(held):
            c.sendall(b"before %d" % i)
            assert c.recv(64) == b"before %d" % i
        os.kill(d.pid, signal.SIGKILL)
        assert d.proc.wait(10) == -signal.SIGKILL
        # The handlers live on, now children of this process.
        wait_until(lambda: all(proc_stat(p) and proc_stat(p)[1] == os.getpid()
                               for p in orphans), 10, "the handlers to be reparented")
        assert not any(pid_dead(p) for p in orphans), [proc_stat(p) for p in orphans]
        # The precondition: the port is still in use by those connections.
        with socket.socket() as bare:
            try:
                bare.bind(("127.0.0.1", port))
                taken = False
            except OSError:
                taken = True
        assert taken, "port %d bindable without SO_REUSEADDR: no test of it" % port
        d2 = Daemon(["-v", "-l", "127.0.0.1:%d" % port, "--", "/bin/cat"])
        assert d2.listening() == ["127.0.0.1:%d" % port], d2.log()
        assert exchange(addr, b"new acceptd") == b"new acceptd"
        wait_counters(d2, active=0, total=1)
        for i, c in enumerate(held):
            c.sendall(b"after %d" % i)
            assert c.recv(64) == b"after %d" % i, "orphan %d stopped serving" % orphans[i]
        # The new acceptd's stop does not touch what it does not own.
        assert d2.stop() == 0, d2.log()
        for i, c in enumerate(held):
            c.sendall(b"still %d" % i)
            assert c.recv(64) == b"still %d" % i
            c.shutdown(socket.SHUT_WR)
            assert read_all(c) == b""
            c.close()
        for p in orphans:
            _pid, status = os.waitpid(p, 0)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (p, status)
        orphans = []
        d.stop()
    finally:
        for p in orphans:
            try:
                os.kill(p, signal.SIGKILL)
                os.waitpid(p, 0)
            except OSError:
                pass
        set_subreaper(False)


# --- a thousand resets in the backlog -----------------------------------------

def accept_queue(port):
    """Connections waiting in the accept queue of the loopback TCP
    listener on port (rx_queue of a LISTEN socket in /proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            fields = ln.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return int(queues.split(":")[1], 16)
    raise AssertionError("no listener on port %d in /proc/net/tcp" % port)


def resets_in_backlog(args, n=1000, pool=False):
    """At -c 1 one client is held, so n clients that connect and reset
    (SO_LINGER 0) all wait in the backlog; the held one closes: acceptd
    works through the n dead connections, logs nothing for them, counts
    each, keeps no fd or child for them, and serves the next client."""
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    if somaxconn < n + 1:
        print("# only %d resets: net.core.somaxconn is %d" % (somaxconn - 1, somaxconn))
        n = somaxconn - 1
    d = Daemon(["-c", "1", "-l", "127.0.0.1:0"] + args)
    addr, = d.listening()
    port = port_of(addr)
    if pool:
        wait_until(lambda: len(proc_children(d.pid)) == 1, 10, "the worker")
    workers = sorted(p for p, _ in proc_children(d.pid))
    fds0 = fd_count(d.pid)
    holder = connect(addr)
    holder.sendall(b"h")
    assert holder.recv(1) == b"h"           # both handlers echo
    for _ in range(n):
        reset_client(("127.0.0.1", port))
    # They really did reset while queued, not after acceptd took them.
    assert accept_queue(port) == n, (accept_queue(port), n)
    assert counters(d)["total"] == 1
    holder.close()
    wait_counters(d, timeout=60, active=0, total=n + 1, refused=0, failed=0)
    assert exchange(addr, b"after") == b"after"
    wait_counters(d, active=0, total=n + 2)
    assert fd_count(d.pid) == fds0, (fd_count(d.pid), fds0)
    # The same worker (none died), no handler left, no zombie.
    wait_until(lambda: sorted(p for p, _ in proc_children(d.pid)) == workers, 10,
               "acceptd's children to be %s" % workers)
    # Nothing but the start and the counters asked for.
    noise = [ln for ln in d.lines if not re.match(
        r"acceptd: (listening on |started acceptd |active \d+ total )", ln)]
    assert not noise, "\n".join(noise[:20])
    assert d.stop() == 0, d.log()


@case
def thousand_resets_in_the_backlog_pool():
    resets_in_backlog(["-b", "echo", "-w", "1"], pool=True)


@case
def thousand_resets_in_the_backlog_spawn():
    # The handler of each reset connection reads it and ends silently
    # (cat would report "Connection reset by peer" on the shared stderr).
    resets_in_backlog(["--", "/bin/sh", "-c", "exec cat 2>/dev/null"])


# --- five hundred handlers end at once ----------------------------------------

@case
def five_hundred_handlers_exit_at_once():
    """500 handlers block on one fifo; closing its only writer ends them
    all in the same instant: each is reaped (no zombie left), its status
    logged, and the counters come back to 0 active."""
    n = 500
    fifo = os.path.join(tmpdir(), "barrier")
    os.mkfifo(fifo)
    barrier = os.open(fifo, os.O_RDWR)     # the only writer, never blocks
    socks = []
    try:
        d = Daemon(["-v", "-c", "1000", "-l", "127.0.0.1:0", "--", "/bin/sh", "-c",
                    'exec 3<"$0"; printf x; read -r _ <&3; exit 0', fifo])
        addr, = d.listening()
        sel = selectors.DefaultSelector()
        for _ in range(n):
            c = connect(addr)
            socks.append(c)
            sel.register(c, selectors.EVENT_READ)
        ready = []

        def all_ready():
            for key, _ in sel.select(0.1):
                assert key.fileobj.recv(1) == b"x", d.log()[-2000:]
                sel.unregister(key.fileobj)
                ready.append(key.fileobj)
            return len(ready) == n
        wait_until(all_ready, 60, "%d handlers holding the fifo open" % n, interval=0)
        assert len(live_children(d.pid)) == n, len(live_children(d.pid))
        assert counters(d)["active"] == n
        os.close(barrier)                  # EOF for all 500 at once
        barrier = None
        wait_until(lambda: not proc_children(d.pid), 30,
                   "no children of acceptd, live or zombie")
        wait_counters(d, active=0, total=n, failed=0, refused=0)
        ends = re.findall(r"^acceptd: end 127\.0\.0\.1:\d+ pid (\d+) status 0 after ",
                          d.log(), re.M)
        assert len(set(ends)) == n, "%d distinct exits logged with status 0\n%s" % (
            len(set(ends)), d.log()[-3000:])
        assert not re.search(r"warning|error", d.log()), d.log()
        for c in socks:
            c.settimeout(5)
            assert read_all(c) == b""      # each handler's end closed its connection
        # And the next one is served as before.
        barrier = os.open(fifo, os.O_RDWR)
        with connect(addr) as c:
            assert c.recv(1) == b"x"
            os.close(barrier)
            barrier = None
            assert read_all(c) == b""
        wait_counters(d, active=0, total=n + 1)
    finally:
        for c in socks:
            c.close()
        if barrier is not None:
            os.close(barrier)
    assert d.stop() == 0


run()
