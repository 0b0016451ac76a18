"""lifecycle.py - what acceptd tells its service manager (sd_notify: READY=1,
STATUS= with the counters at most once a second, WATCHDOG=1 at half
WATCHDOG_USEC, STOPPING=1), what it keeps from its handlers (no
NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*, FDSTORE), and the fd store: the
listeners acceptd binds itself are handed to the manager before READY=1 and
taken back by name on the next start, so a restart keeps the port (even a
random one) and serves the connections that queued while nothing ran.

The manager is helpers/svcmgr.py: a reader thread on a datagram socket that
records every message with its sender pid and arrival time, keeps the fds
that come with FDSTORE=1, drops them on FDSTOREREMOVE=1, and starts acceptd
again with them as LISTEN_FDS.  Readiness is READY=1 itself or acceptd's
log; the sleeps are the observation windows (quiet periods, the watchdog
cadence, the absence of messages)."""
import json
import math
import os
import re
import signal
import socket
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "helpers"))
from acceptd_test import (refused, sock_inodes, traced_acceptd, ACCEPTD, Daemon, Skip, case, connect, counters,  # noqa: E402
                          exchange, free_port, has_ipv6, parse_addr, proc_children,
                          read_all, run, stop_pid, tmpdir, wait_counters,
                          wait_until)
from svcmgr import ServiceManager  # noqa: E402

HELPERS = os.path.join(HERE, "helpers")
REPORT = [sys.executable, os.path.join(HELPERS, "report.py")]
PY_WORKER = os.environ.get("ACCEPTD_PY_WORKER")
STRACE = shutil.which("strace")
# Writes one byte (so the client knows it runs), then holds the connection
# until the client closes it.
HOLD = ["/bin/sh", "-c", "printf x; exec cat >/dev/null"]
STATUS_RX = re.compile(r"STATUS=active (\d+), total (\d+), refused (\d+), failed (\d+), "
                       r"workers (\d+)$")


# --- helpers local to this file --------------------------------------------

def traced_env(env=None):
    """The environment for an acceptd run under strace: LeakSanitizer
    cannot work under ptrace, so an ASan build must not try (the same
    paths run untraced, leaks fatal, in the other cases)."""
    e = dict(os.environ if env is None else env)
    e["ASAN_OPTIONS"] = (e.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return e


def traced_pid(d):
    """The pid of acceptd run under strace (Daemon d is strace): stopping
    strace would only detach it, so a case stops this pid itself."""
    # By what it runs: strace forks short-lived probes of its own first.
    return wait_until(lambda: traced_acceptd(d.pid), 10, "acceptd under strace")


def store_name(addr):
    """The FDNAME acceptd gives its listener ADDR (as logged)."""
    return "acceptd-own-" + addr.replace(":", "_")


def status_of(m):
    """A STATUS= message as a dict, or None for any other message."""
    if not m.text.startswith("STATUS="):
        return None
    g = STATUS_RX.match(m.text)
    assert g, "malformed STATUS message %r" % m.text
    return dict(zip(("active", "total", "refused", "failed", "workers"),
                    map(int, g.groups())))


def from_store_line(d, addr):
    return d.wait_line(r"listening on %s \(from the fd store\)$" % re.escape(addr))


def assert_all_from(mgr, pid, start=0):
    """Every message since start came from acceptd itself, no worker."""
    foreign = [m for m in mgr.messages(start=start) if m.pid != pid]
    assert not foreign, "notifications from other pids than acceptd's %d: %r" % (pid, foreign)


def need_py_worker():
    if not PY_WORKER:
        raise Skip("ACCEPTD_PY_WORKER not set (run through make check)")


def env_names(environ):
    return [v.split("=", 1)[0] for v in environ]


def plumbing_in(names):
    return sorted(n for n in names if n in ("NOTIFY_SOCKET", "FDSTORE") or
                  n.startswith("WATCHDOG_") or n.startswith("LISTEN_"))


def proc_environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return [v.decode("utf-8", "replace") for v in f.read().split(b"\0") if v]


# --- 1. READY=1 ------------------------------------------------------------

@case
def ready_means_every_listener_accepts():
    port = free_port()
    path = os.path.join(tmpdir(), "ready.sock")
    with ServiceManager() as mgr:
        d = mgr.start(["-l", "127.0.0.1:%d" % port, "-l", "unix:" + path, "--", "/bin/cat"])
        mgr.ready(d)
        # Nothing read from the log yet: READY=1 alone says both accept.
        assert exchange("127.0.0.1:%d" % port, b"tcp after READY") == b"tcp after READY"
        assert exchange("unix:" + path, b"unix after READY") == b"unix after READY"
        assert d.listening(2) == ["127.0.0.1:%d" % port, "unix:" + path], d.log()
        assert d.stop() == 0, d.log()
        texts = mgr.texts(d.pid)
        assert texts.count("READY=1") == 1, texts
        assert_all_from(mgr, d.pid)


@case
def ready_waits_for_slow_listeners():
    """bind() and listen() made slow (strace delays each by 0.3 s): a READY=1
    sent before the listeners exist would be read while a connect is still
    refused."""
    if not STRACE:
        raise Skip("strace not installed")
    port = free_port()
    path = os.path.join(tmpdir(), "slow.sock")
    with ServiceManager() as mgr:
        t0 = time.monotonic()
        d = Daemon(["-l", "127.0.0.1:%d" % port, "-l", "unix:" + path, "--", "/bin/cat"],
                   env=traced_env(mgr.env()),
                   argv0=[STRACE, "-qq", "-o", "/dev/null", "-e", "trace=bind,listen",
                          "-e", "inject=bind,listen:delay_exit=300000", "--", ACCEPTD])
        apid = traced_pid(d)
        try:
            m = mgr.wait("READY=1", timeout=30)
            assert exchange("127.0.0.1:%d" % port, b"tcp") == b"tcp"
            assert exchange("unix:" + path, b"unix") == b"unix"
            # The delays were in effect (two binds, two listens), and
            # READY=1 came from acceptd, strace's child.
            assert m.t - t0 >= 1.1, "READY=1 after %.2fs: the delays did not apply" % (
                m.t - t0)
            assert m.pid == apid, (m, apid)
            assert stop_pid(apid), "acceptd did not stop on SIGTERM"
        finally:
            stop_pid(apid)
        assert d.wait() == 0, d.log()


@case
def ready_on_abstract_socket_with_worker_pool():
    port = free_port()
    with ServiceManager(abstract=True) as mgr:
        assert mgr.address.startswith("@")
        d = mgr.start(["-b", "echo", "-w", "2", "-l", "127.0.0.1:%d" % port])
        mgr.ready(d)
        assert exchange("127.0.0.1:%d" % port, b"pool after READY") == b"pool after READY"
        d.listening()
        assert d.stop() == 0, d.log()
        assert mgr.texts(d.pid).count("READY=1") == 1, mgr.texts()
        assert_all_from(mgr, d.pid)


# --- 2. no NOTIFY_SOCKET, or nobody at the other end -------------------------

@case
def no_notify_socket_sends_nothing():
    if not STRACE:
        raise Skip("strace not installed")
    trace = os.path.join(tmpdir(), "trace")
    args = ["-l", "127.0.0.1:0", "-l", "unix:" + os.path.join(tmpdir(), "s"), "--", "/bin/cat"]
    with ServiceManager() as mgr:
        # A control beside it: the same acceptd and variables, with a
        # NOTIFY_SOCKET.  What the control sends in the window is what
        # would have been due, so the window is not empty by accident.
        ctl = mgr.start(args[:2] + ["-l", "unix:" + os.path.join(tmpdir(), "c")] + args[4:],
                        fdstore="8", extra_env={"WATCHDOG_USEC": "200000"})
        # The watchdog and fd-store variables alone must not wake anything.
        d = Daemon(args,
                   argv0=[STRACE, "-q", "-o", trace, "-e", "trace=connect,sendto,sendmsg",
                          "--", ACCEPTD],
                   extra_env={"WATCHDOG_USEC": "200000", "FDSTORE": "8",
                              "ASAN_OPTIONS": traced_env()["ASAN_OPTIONS"]})
        apid = traced_pid(d)
        try:
            addr, uaddr = d.listening(2)
            caddr, cuaddr = ctl.listening(2)
            mgr.ready(ctl)
            start = mgr.mark()
            for a, u in ((addr, uaddr), (caddr, cuaddr)):
                for i in range(5):
                    assert exchange(a, b"%d" % i) == b"%d" % i
                assert exchange(u, b"u") == b"u"
            # The window, on the control's clock: its final STATUS and
            # 12 WATCHDOG=1 (1.2 s at WATCHDOG_USEC=200000), each of which
            # the traced acceptd would have sent with a NOTIFY_SOCKET.
            mgr.wait("STATUS=active 0, total 6, refused 0, failed 0, workers 0",
                     pid=ctl.pid, start=start, timeout=5)
            wait_until(lambda: mgr.texts(ctl.pid, start).count("WATCHDOG=1") >= 12, 5,
                       "12 WATCHDOG=1 from the control")
            # The counters, asked of acceptd itself (d.pid is strace's).
            mark = len(d.lines)
            os.kill(apid, signal.SIGUSR1)
            d.wait_line(r"active 0 total 6 refused 0 failed 0$", start=mark)
            assert stop_pid(apid), "acceptd did not stop on SIGTERM"
        finally:
            stop_pid(apid)
        assert d.wait() == 0, d.log()
        assert ctl.stop() == 0, ctl.log()
    with open(trace) as f:
        lines = f.read().splitlines()
    assert any(re.search(r"\+\+\+ exited with 0 \+\+\+", ln) for ln in lines), lines
    unix = [ln for ln in lines if "AF_UNIX" in ln or "sun_path" in ln]
    assert not unix, "datagrams/connects to a unix address without NOTIFY_SOCKET: %s" % unix


@case
def notify_socket_nobody_listens_still_serves():
    def wakeups(pid):
        """How often pid has slept and woken (voluntary context switches):
        an idle acceptd wakes only for its timers."""
        with open("/proc/%d/status" % pid) as f:
            return int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)$", f.read(),
                                 re.M).group(1))

    gone = os.path.join(tmpdir(), "nobody-here")
    for target in (gone, "@acceptd-test-nobody-%d" % os.getpid()):
        env = {"NOTIFY_SOCKET": target, "WATCHDOG_USEC": "200000", "FDSTORE": "4"}
        d = Daemon(["-l", "127.0.0.1:0", "--", "/bin/cat"], extra_env=env)
        addr, = d.listening()
        for i in range(5):
            assert exchange(addr, b"%s %d" % (target.encode(), i)) == \
                b"%s %d" % (target.encode(), i)
        # STATUS and several WATCHDOG=1 went nowhere: with no client, only
        # the timers wake the loop, every 100 ms here.  15 wake-ups (a
        # last reap among them) take over 1.2 s, past the STATUS due for
        # the last connection.
        base = wakeups(d.pid)
        wait_until(lambda: wakeups(d.pid) - base >= 15, 5,
                   "the loop to wake 15 times for its timers (%s)" % target)
        assert d.proc.poll() is None, "acceptd died: %s" % d.log()
        assert exchange(addr, b"still") == b"still"
        wait_counters(d, active=0, total=6, failed=0)
        assert d.stop() == 0, d.log()


# --- 3. STATUS=: content, rate, final counts --------------------------------

@case
def status_burst_is_rate_limited_and_final_counts_sent():
    with ServiceManager() as mgr:
        d = mgr.start(["-l", "127.0.0.1:0", "--", "/bin/true"])
        addr, = d.listening()
        mgr.ready(d)
        mgr.quiet(1.2)      # a quiet period: the burst's first change may go at once
        mark = mgr.mark()
        t0 = time.monotonic()
        for _ in range(50):
            connect(addr).close()
        t_burst = time.monotonic()
        burst = t_burst - t0
        final = "STATUS=active 0, total 50, refused 0, failed 0, workers 0"
        m = mgr.wait(final, pid=d.pid, start=mark, timeout=6)
        late = m.t - t_burst
        after = mgr.quiet(1.5, pid=d.pid)
        assert not [a for a in after if a.text.startswith("STATUS=")], \
            "STATUS sent though nothing changed: %r" % after
        want = {"active": 0, "total": 50, "refused": 0, "failed": 0}
        got = counters(d)
        assert got == want, (got, want)
        assert d.stop() == 0, d.log()
        allm = mgr.messages(d.pid)
        statuses = [x for x in allm if status_of(x) is not None]
        burst_st = [x for x in mgr.messages(d.pid, mark) if status_of(x) is not None and
                    x.t <= m.t]
        limit = 2 if burst <= 0.3 else 2 + math.ceil(burst)
        assert 1 <= len(burst_st) <= limit, \
            "burst of 50 in %.2fs gave %d STATUS messages (at most %d): %r" % (
                burst, len(burst_st), limit, [x.text for x in burst_st])
        # At most once a second (a little slack for the reader thread).
        gaps = [b.t - a.t for a, b in zip(statuses, statuses[1:])]
        assert all(g >= 0.8 for g in gaps), "STATUS more than once a second: gaps %s" % (
            ["%.3f" % g for g in gaps])
        assert late <= 2.0, "final counts sent %.2fs after the burst (burst %.2fs)" % (
            late, burst)
        assert_all_from(mgr, d.pid)


@case
def status_counts_refused_failed_and_workers():
    with ServiceManager() as mgr:
        d = mgr.start(["-v", "-b", "echo", "-w", "2", "-C", "1", "-l", "127.0.0.1:0"])
        addr, = d.listening()
        mgr.ready(d)
        for i in range(2):
            d.wait_line(r"worker %d pid \d+ ready$" % i)
        # The pool's size is part of STATUS: it must show both workers.
        mgr.wait(lambda m: (status_of(m) or {}).get("workers") == 2, pid=d.pid,
                 timeout=5, what="STATUS with workers 2")
        held = connect(addr)
        held.sendall(b"ping")
        assert held.recv(4) == b"ping"
        port = held.getsockname()[1]
        wpid = int(d.wait_line(r"connection 127\.0\.0\.1:%d on \S+ worker pid (\d+)$"
                               % port).group(1))
        # -C 1: a second connection from 127.0.0.1 is refused (closed at once).
        with connect(addr) as c2:
            try:
                assert read_all(c2) == b""
            except ConnectionResetError:
                pass
        # The worker dies holding a connection: that one failed.
        mark = len(d.lines)
        os.kill(wpid, signal.SIGKILL)
        d.wait_line(r"worker \d pid (?!%d\b)\d+ ready$" % wpid, start=mark)
        held.close()
        got = wait_counters(d, active=0, refused=1, failed=1)
        want = "STATUS=active 0, total %d, refused 1, failed 1, workers 2" % got["total"]
        mgr.wait(want, pid=d.pid, timeout=5)
        assert d.stop() == 0, d.log()
        assert_all_from(mgr, d.pid)


# --- 4. WATCHDOG=1 -----------------------------------------------------------

@case
def watchdog_every_half_interval():
    with ServiceManager() as mgr:
        # WATCHDOG_PID unset: the watchdog is acceptd's.  A pool, so that a
        # worker sending too would show.
        d = mgr.start(["-b", "echo", "-w", "2", "-l", "127.0.0.1:0"],
                      extra_env={"WATCHDOG_USEC": "400000"})
        d.listening()
        mgr.ready(d)
        win = [m for m in mgr.quiet(2.0) if m.text == "WATCHDOG=1"]
        assert 7 <= len(win) <= 13, "%d WATCHDOG=1 in 2 s at WATCHDOG_USEC=400000: %r" % (
            len(win), win)
        assert all(m.pid == d.pid for m in win), win
        assert d.stop() == 0, d.log()
        # WATCHDOG_PID naming acceptd itself: the same.
        d = mgr.start(["-l", "127.0.0.1:0", "--", "/bin/cat"],
                      extra_env={"WATCHDOG_USEC": "400000"},
                      argv0=["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"', ACCEPTD])
        d.listening()
        mgr.ready(d)
        win = [m for m in mgr.quiet(1.0, pid=d.pid) if m.text == "WATCHDOG=1"]
        assert 3 <= len(win) <= 7, "%d WATCHDOG=1 in 1 s with WATCHDOG_PID=$$" % len(win)
        assert d.stop() == 0, d.log()


@case
def no_watchdog_for_another_pid():
    with ServiceManager() as mgr:
        d = mgr.start(["-l", "127.0.0.1:0", "--", "/bin/cat"],
                      extra_env={"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"})
        addr, = d.listening()
        mgr.ready(d)
        assert exchange(addr, b"x") == b"x"
        win = mgr.quiet(1.5)
        assert "WATCHDOG=1" not in [m.text for m in win], win
        assert d.stop() == 0, d.log()
        assert "WATCHDOG=1" not in mgr.texts(), mgr.texts()


# --- 5. STOPPING=1 ------------------------------------------------------------

@case
def stopping_when_the_stop_begins():
    with ServiceManager() as mgr:
        d = mgr.start(["--drain", "10", "-l", "127.0.0.1:0", "--"] + HOLD)
        addr, = d.listening()
        mgr.ready(d)
        c = connect(addr)
        assert c.recv(1) == b"x"
        assert "STOPPING=1" not in mgr.texts(d.pid), mgr.texts()
        d.signal(signal.SIGTERM)
        mgr.wait("STOPPING=1", pid=d.pid)
        # Sent as the stop begins, not at exit: acceptd still drains.
        assert d.proc.poll() is None, "acceptd exited with a connection open: %s" % d.log()
        c.close()
        assert d.wait() == 0, d.log()
        texts = mgr.texts(d.pid)
        assert texts.count("STOPPING=1") == 1, texts
        assert texts.index("READY=1") < texts.index("STOPPING=1"), texts
        # SIGINT too.
        d = mgr.start(["-l", "127.0.0.1:0", "--", "/bin/cat"], use_store=False)
        d.listening()
        mgr.ready(d)
        d.signal(signal.SIGINT)
        mgr.wait("STOPPING=1", pid=d.pid)
        assert d.wait() == 0, d.log()
        texts = mgr.texts(d.pid)
        assert texts.count("STOPPING=1") == 1, texts
        assert texts.index("READY=1") < texts.index("STOPPING=1"), texts


# --- 6. handlers and workers see none of the plumbing -------------------------

@case
def handler_and_worker_env_without_plumbing():
    need_py_worker()
    with ServiceManager() as mgr:
        # A socket "from a socket unit" (the test's), so LISTEN_* are real.
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        addr = "127.0.0.1:%d" % lsock.getsockname()[1]
        mgr.add("web", lsock)
        lsock.close()
        wd = {"WATCHDOG_USEC": "30000000"}
        wrap = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"', ACCEPTD]
        d = mgr.start(["--"] + REPORT, extra_env=wd, argv0=wrap)
        assert d.listening() == ["web"], d.log()
        mgr.ready(d)
        with connect(addr) as c:
            rep = json.loads(read_all(c))
        names = env_names(rep["environ"])
        assert plumbing_in(names) == [], "plumbing reached the handler: %s" % plumbing_in(names)
        assert d.stop() == 0, d.log()
        # A persistent worker, started by the same kind of acceptd.
        d = mgr.start(["-v", "--fd-passing", "-w", "1", "--", sys.executable, PY_WORKER],
                      extra_env=wd, argv0=wrap)
        d.listening()
        mgr.ready(d)
        wpid = int(d.wait_line(r"worker 0 pid (\d+) ready$").group(1))
        names = env_names(proc_environ(wpid))
        assert plumbing_in(names) == [], "plumbing reached the worker: %s" % plumbing_in(names)
        # And acceptd itself did have it all.
        own = env_names(proc_environ(d.pid))
        for k in ("NOTIFY_SOCKET", "FDSTORE", "WATCHDOG_USEC", "WATCHDOG_PID"):
            assert k in own, (k, own)
        assert d.stop() == 0, d.log()


# --- 7. the fd store ------------------------------------------------------------

@case
def fdstore_every_own_listener_before_ready():
    path = os.path.join(tmpdir(), "store.sock")
    port = free_port()
    args = ["-l", "127.0.0.1:0", "-l", "127.0.0.1:%d" % port, "-l", "unix:" + path]
    if has_ipv6():
        args += ["-l", "[::1]:0"]
    n = len(args) // 2
    with ServiceManager() as mgr:
        d = mgr.start(args + ["--", "/bin/cat"])
        addrs = d.listening(n)
        before = mgr.ready(d)
        stores = [m for m in before if "FDSTORE=1" in m.text.split("\n")]
        want = sorted("FDSTORE=1\nFDNAME=" + store_name(a) for a in addrs)
        assert sorted(m.text for m in stores) == want, (
            [m.text for m in stores], want)
        assert all(m.nfds == 1 for m in stores), stores
        assert not [m for m in before if "FDSTOREREMOVE=1" in m.text], before
        store = mgr.stored()
        for a in addrs:
            name = store_name(a)
            assert ":" not in name, name
            with socket.socket(fileno=os.dup(store[name])) as s:
                assert s.type == socket.SOCK_STREAM
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1, a
                fam, sa = parse_addr(a)
                got = s.getsockname()
                if fam == socket.AF_INET6:
                    got = got[:2]
                assert s.family == fam and got == sa, (a, s.family, got)
            # It is acceptd's very listener, not a copy of something else.
            assert os.fstat(store[name]).st_ino in sock_inodes(d.pid), a
        assert d.stop() == 0, d.log()


@case
def restart_through_store_keeps_udp_sockets_and_queued_datagrams():
    # acceptd's own datagram sockets go to the fd store like listeners: a
    # datagram sent while no acceptd runs waits in the stored socket and
    # is answered by the next one; a per-peer one is never stored (its
    # stored copy would come back connected to one peer).
    args = ["-b", "echo", "-w", "1", "-l", "udp:127.0.0.1:0", "-l", "127.0.0.1:0"]
    with ServiceManager() as mgr:
        d1 = mgr.start(args)
        addrs = d1.listening(2)
        udp = [a for a in addrs if a.startswith("udp:")][0]
        host, port = udp[4:].rsplit(":", 1)
        before = mgr.ready(d1)
        stores = sorted(m.text for m in before if "FDSTORE=1" in m.text.split("\n"))
        assert stores == sorted("FDSTORE=1\nFDNAME=" + store_name(a) for a in addrs), stores
        inode = os.fstat(mgr.stored()[store_name(udp)]).st_ino
        assert d1.stop() == 0, d1.log()
        mgr.wait("STOPPING=1", pid=d1.pid)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(10)
            c.sendto(b"sent while down", (host, int(port)))
            mark = mgr.mark()
            d2 = mgr.start(args)
            assert sorted(d2.listening(2)) == sorted(addrs), (d2.log(), addrs)
            from_store_line(d2, udp)
            mgr.ready(d2, start=mark)
            assert c.recvfrom(100) == (b"sent while down", (host, int(port)))
        assert inode in sock_inodes(d2.pid), "acceptd does not hold the stored UDP socket"
        assert d2.stop() == 0, d2.log()
    with ServiceManager() as mgr:
        d = mgr.start(["--datagram", "per-peer", "-l", "udp:127.0.0.1:0", "--", "/bin/cat"])
        d.listening()
        before = mgr.ready(d)
        assert not [m for m in before if "FDSTORE=1" in m.text.split("\n")], before
        assert d.stop() == 0, d.log()


@case
def restart_through_store_keeps_ports_and_queued_connections():
    path = os.path.join(tmpdir(), "kept.sock")
    args = ["-l", "127.0.0.1:0", "-l", "unix:" + path]
    if has_ipv6():
        args += ["-l", "[::1]:0"]
    n = len(args) // 2
    with ServiceManager() as mgr:
        d1 = mgr.start(args + ["--", "/bin/cat"])
        addrs = d1.listening(n)
        mgr.ready(d1)
        for a in addrs:
            assert exchange(a, b"first " + a.encode()) == b"first " + a.encode()
        inodes = {a: os.fstat(mgr.stored()[store_name(a)]).st_ino for a in addrs}
        assert d1.stop() == 0, d1.log()
        # Its last datagram may still be on its way to the reader thread:
        # in before the mark, so it is not taken for the next acceptd's.
        mgr.wait("STOPPING=1", pid=d1.pid)
        assert os.path.exists(path), "the stored unix listener's file was removed"
        # Nothing runs now; these wait in the stored sockets' backlogs.
        waiting = []
        for a in addrs:
            c = connect(a)
            c.sendall(b"queued while down " + a.encode())
            c.shutdown(socket.SHUT_WR)
            waiting.append((a, c))
        mark = mgr.mark()
        d2 = mgr.start(args + ["--", "/bin/cat"])
        assert d2.listening(n) == addrs, (d2.log(), addrs)
        for a in addrs:
            from_store_line(d2, a)
        before = mgr.ready(d2, start=mark)
        assert not [m for m in before if "FDSTOREREMOVE=1" in m.text], before
        for a, c in waiting:
            c.settimeout(10)
            assert read_all(c) == b"queued while down " + a.encode(), a
            c.close()
        # The same sockets: none bound anew.
        held = sock_inodes(d2.pid)
        for a in addrs:
            assert inodes[a] in held, "%s: acceptd does not hold the stored socket" % a
        assert sorted(mgr.stored()) == sorted(store_name(a) for a in addrs), mgr.stored()
        for a in addrs:
            assert exchange(a, b"second") == b"second"
        assert d2.stop() == 0, d2.log()
        assert_all_from(mgr, d2.pid, start=mark)


@case
def changed_listen_removes_the_old_stored_socket():
    t = tmpdir()
    upath = os.path.join(t, "u.sock")
    with ServiceManager() as mgr:
        d1 = mgr.start(["-l", "127.0.0.1:0", "-l", "unix:" + upath, "--", "/bin/cat"])
        old, uaddr = d1.listening(2)
        mgr.ready(d1)
        assert d1.stop() == 0, d1.log()
        # Its last datagram may still be on its way to the reader thread:
        # in before the mark, so it is not taken for the next acceptd's.
        mgr.wait("STOPPING=1", pid=d1.pid)
        old_port = parse_addr(old)[1][1]
        new_port = free_port()
        while new_port == old_port:
            new_port = free_port()
        new = "127.0.0.1:%d" % new_port
        mark = mgr.mark()
        d2 = mgr.start(["-l", new, "-l", "unix:" + upath, "--", "/bin/cat"])
        assert d2.listening(2) == [new, uaddr], d2.log()
        from_store_line(d2, uaddr)
        assert not re.search(r"listening on %s \(from the fd store\)" % re.escape(new),
                             d2.log()), d2.log()
        before = [m.text for m in mgr.ready(d2, start=mark)]
        gone = "FDSTOREREMOVE=1\nFDNAME=" + store_name(old)
        assert gone in before, "no %r before READY=1: %r" % (gone, before)
        assert [b for b in before if b.startswith("FDSTOREREMOVE=1")] == [gone], before
        assert "FDSTORE=1\nFDNAME=" + store_name(new) in before, before
        assert sorted(mgr.stored()) == sorted([store_name(new), store_name(uaddr)]), \
            mgr.stored()
        # acceptd closed its copy too: the old port is gone.
        assert refused(old), "old port %s still accepts after FDSTOREREMOVE" % old
        assert exchange(new, b"new") == b"new"
        assert exchange(uaddr, b"unix") == b"unix"
        assert d2.stop() == 0, d2.log()


@case
def stored_listeners_queue_in_drain_and_close_when_manager_lets_go():
    with ServiceManager() as mgr:
        args = ["--drain", "10", "-l", "127.0.0.1:0", "--"] + HOLD
        d1 = mgr.start(args)
        addr, = d1.listening()
        mgr.ready(d1)
        c1 = connect(addr)
        assert c1.recv(1) == b"x"
        d1.signal(signal.SIGTERM)
        mgr.wait("STOPPING=1", pid=d1.pid)
        d1.wait_line(r"stopping")
        # The manager holds a copy: a connect while acceptd drains queues...
        late = connect(addr)
        assert d1.proc.poll() is None
        c1.close()
        assert d1.wait() == 0, d1.log()
        # ...and the next acceptd serves it.
        d2 = mgr.start(args)
        assert d2.listening() == [addr]
        from_store_line(d2, addr)
        late.settimeout(10)
        assert late.recv(1) == b"x", "the connection queued during the drain was not served"
        # Now the manager lets go: the listener is acceptd's alone, and a
        # SIGTERM closes it at once, while acceptd still drains.
        mgr.drop_store()
        d2.signal(signal.SIGTERM)
        mgr.wait("STOPPING=1", pid=d2.pid)
        wait_until(lambda: refused(addr), 5, "connects to %s to be refused" % addr)
        assert d2.proc.poll() is None, "acceptd did not drain: %s" % d2.log()
        late.close()
        assert d2.wait() == 0, d2.log()


@case
def fdstore_zero_stores_nothing_unset_stores():
    with ServiceManager() as mgr:
        d = mgr.start(["-l", "127.0.0.1:0", "--", "/bin/cat"], fdstore="0")
        addr, = d.listening()
        before = mgr.ready(d)
        assert not [m for m in before if "FDSTORE" in m.text or m.nfds], before
        assert exchange(addr, b"z") == b"z"
        assert d.stop() == 0, d.log()
        assert not [m for m in mgr.messages() if "FDSTORE" in m.text or m.nfds], \
            mgr.messages()
        assert mgr.stored() == {}
        # FDSTORE unset (a manager older than systemd 254): stored all the same.
        d = mgr.start(["-l", "127.0.0.1:0", "--", "/bin/cat"], fdstore=None)
        addr, = d.listening()
        before = [m.text for m in mgr.ready(d)]
        assert "FDSTORE=1\nFDNAME=" + store_name(addr) in before, before
        assert d.stop() == 0, d.log()


@case
def fdstore_not_a_positive_number_stores_nothing():
    with ServiceManager() as mgr:
        stored = {}
        for value in ("00", "-1", "many"):
            mark = mgr.mark()
            d = mgr.start(["-l", "127.0.0.1:0", "--", "/bin/cat"], fdstore=value,
                          use_store=False)
            addr, = d.listening()
            before = mgr.ready(d, start=mark)
            got = [m.text for m in before if "FDSTORE" in m.text or m.nfds]
            if got:
                stored[value] = got
            assert exchange(addr, b"n") == b"n"
            assert d.stop() == 0, d.log()
            mgr.drop_store()
        assert not stored, "stored although FDSTORE is no number > 0: %r" % stored


@case
def manager_sockets_are_not_stored():
    with ServiceManager() as mgr:
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        addr = "127.0.0.1:%d" % lsock.getsockname()[1]
        mgr.add("web", lsock)
        lsock.close()
        d = mgr.start(["--", "/bin/cat"])
        assert d.listening() == ["web"], d.log()
        before = mgr.ready(d)
        assert not [m for m in before if "FDSTORE" in m.text or m.nfds], before
        assert exchange(addr, b"w") == b"w"
        assert d.stop() == 0, d.log()
        assert list(mgr.stored()) == ["web"]
        assert not [m for m in mgr.messages() if "FDSTORE" in m.text], mgr.messages()


run()
