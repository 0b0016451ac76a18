"""pool.py - the worker pool: built-in services in pre-forked workers and
persistent PROGRAM workers (--fd-passing, acceptd-workers(7)).

Supervision (a worker killed mid-connection costs that connection only and
is restarted; one that crashes at once is restarted with a doubling
back-off, never a fork storm, which a run of 10 s clears; one that answers HELLO with a version acceptd
does not speak, or never answers, is stopped and restarted; acceptd killed:
its workers finish what they hold and exit), 10,000 idle connections held
by two workers, the C and Python example workers (first line, echo, dual
stack, unix listeners, max=1 back-pressure, STOP on SIGTERM, run by hand),
the state a worker starts in (fds, signals, process group, environment, the
CONN metadata), usage errors, and single-connection mode through the pool.

Readiness comes from acceptd's -v log ("worker N pid P ready", "connection
ADDR on LISTENER worker pid P", "end ADDR worker pid P ..."); the only
sleeps are measuring windows (the respawn rate) and bounded waits for
something that must NOT happen (a connection that must stay unserved)."""
import json
import os
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (fd_targets, notify_until, counters, wait_counters, ACCEPTD, Daemon, Skip, case, connect, exchange,  # noqa: E402
                          closing_all, free_port, parse_addr, pid_dead, proc_children,
                          proc_stat, run, run_acceptd, talk, tmpdir, wait_until)

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
BADVERSION = os.path.join(HELPERS, "pool_badversion.py")
STATE_PY = os.path.join(HELPERS, "pool_state.py")
STALL = os.path.join(HELPERS, "pool_stall.py")
FLAKY = os.path.join(HELPERS, "pool_flaky.py")
# pool_state.py through /bin/sh, which records the signal state acceptd gave
# the worker before Python ignores SIGPIPE and SIGXFSZ on its own.
# The raw environment is passed on too, as dash rebuilds it (a duplicate
# name, for one, would not survive).
STATE = ["/bin/sh", "-c", 'exec "$0" "$1" --sig "$(grep ^Sig /proc/$$/status)" '
         '--environ "$(base64 -w0 /proc/$$/environ)"', sys.executable, STATE_PY]
C_WORKER = os.environ.get("ACCEPTD_C_WORKER")
PY_WORKER = os.environ.get("ACCEPTD_PY_WORKER")
SSA = shutil.which("systemd-socket-activate")

SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)
PLUMBING = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
            "WATCHDOG_USEC", "WATCHDOG_PID")
PER_CONN = ("PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT",
            "TCPCONNNUM", "REMOTE_ADDR", "REMOTE_PORT", "ACCEPTD_LISTENER",
            "UNIXREMOTEEUID", "UNIXREMOTEEGID", "UNIXREMOTEPID", "UNIXLOCALPATH")


# --- helpers local to this file --------------------------------------------

def port_of(addr):
    return parse_addr(addr)[1][1]


def ready_pids(d, n, start=0, timeout=20):
    """The pids of workers 0..n-1 from their first "ready" line after log
    line `start`."""
    return [int(d.wait_line(r"worker %d pid (\d+) ready$" % i, timeout, start).group(1))
            for i in range(n)]


def conn_worker(d, sock, start=0):
    """The worker pid acceptd logged for the TCP client socket sock."""
    port = sock.getsockname()[1]
    return int(d.wait_line(r"connection 127\.0\.0\.1:%d on \S+ worker pid (\d+)$" % port,
                           start=start).group(1))


def echo(sock, data, timeout=10):
    """Send data, read back exactly as many bytes; they must be the same."""
    sock.settimeout(timeout)
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        b = sock.recv(len(data) - len(got))
        if not b:
            break
        got += b
    assert got == data, "echo: sent %r, got %r" % (data, got)


def read_line(sock, timeout=10):
    sock.settimeout(timeout)
    line = b""
    while not line.endswith(b"\n"):
        b = sock.recv(1)
        assert b, "end of file after %r" % line
        line += b
    return line.decode()


def nothing_for(sock, secs):
    """True if sock stays open and silent for secs (no data, no EOF, no
    reset): a connection waiting in the listen backlog."""
    sock.settimeout(secs)
    try:
        got = sock.recv(1)
    except socket.timeout:
        return True
    except ConnectionResetError:
        raise AssertionError("connection reset while it should wait")
    raise AssertionError("expected nothing, got %r" % got)


def eof_or_reset(sock, timeout=10):
    sock.settimeout(timeout)
    try:
        got = sock.recv(100)
    except ConnectionResetError:
        return True
    except socket.timeout:
        raise AssertionError("connection still open %ss after its worker died" % timeout)
    assert got == b"", "got %r instead of end of file" % got
    return True



def live_children(pid):
    return sorted(p for p, state in proc_children(pid) if state not in ("Z", "X"))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)


def sig_fields(text):
    """'SigBlk:\t0000...' lines -> {'SigBlk': int, ...}"""
    out = {}
    for ln in text.splitlines():
        k, _, v = ln.partition(":")
        if k.strip() in ("SigBlk", "SigIgn"):
            out[k.strip()] = int(v.strip(), 16)
    assert set(out) == {"SigBlk", "SigIgn"}, text
    return out


def sock_inode(link):
    m = re.match(r"socket:\[(\d+)\]$", link)
    return m.group(1) if m else None


def tcp_inodes(lport, rport=None, state=None):
    """Inodes of the IPv4 TCP sockets with local port lport (and remote
    port rport, and state, a /proc/net/tcp hex code, when given)."""
    out = set()
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            col = row.split()
            lp = int(col[1].rsplit(":", 1)[1], 16)
            rp = int(col[2].rsplit(":", 1)[1], 16)
            if lp == lport and (rport is None or rp == rport) and \
                    (state is None or col[3] == state):
                out.add(col[9])
    return out


def poll_set(pid):
    """{inode: event mask} of every file in pid's epoll sets, from the
    epoll fds' /proc fdinfo."""
    out = {}
    for fd, target in fd_targets(pid).items():
        if target == "anon_inode:[eventpoll]":
            with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
                for m in re.finditer(r"^tfd:\s*\d+ events:\s*([0-9a-f]+) .* ino:([0-9a-f]+)",
                                     f.read(), re.M):
                    out[int(m.group(2), 16)] = int(m.group(1), 16)
    return out


def backlog_parked(pid, lport):
    """True when acceptd (pid) has a worker channel it waits to write to
    (EPOLLOUT: full), its IPv4 listener on lport out of its poll set, and
    connections waiting in that listener's backlog."""
    listen = []
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            col = row.split()
            if int(col[1].rsplit(":", 1)[1], 16) == lport and col[3] == "0A":
                listen.append((int(col[9]), int(col[4].split(":")[1], 16)))
    (inode, backlog), = listen
    watched = poll_set(pid)
    return (any(ev & select.EPOLLOUT for ev in watched.values()) and
            inode not in watched and backlog > 0)


def unix_type(inode):
    """The socket type (/proc/net/unix) of the unix socket with this inode."""
    with open("/proc/net/unix") as f:
        for row in f.read().splitlines()[1:]:
            col = row.split()
            if col[6] == inode:
                return int(col[4], 16)
    return None


def _ignore_and_block():
    """acceptd starts with SIGHUP, SIGPIPE, SIGUSR2 ignored and SIGQUIT,
    SIGALRM blocked (a careless parent): its workers must not inherit that."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGQUIT, signal.SIGALRM})


def need_workers():
    if not C_WORKER or not os.path.exists(C_WORKER):
        raise Skip("ACCEPTD_C_WORKER not built (run through make check)")
    if not PY_WORKER:
        raise Skip("ACCEPTD_PY_WORKER not set (run through make check)")


def worker_argv(kind):
    need_workers()
    return [C_WORKER] if kind == "c" else [sys.executable, PY_WORKER]


# --- 1. a built-in worker killed in the middle of a connection -------------

@case
def builtin_worker_sigkill_mid_connection():
    d = Daemon(["-v", "-w", "2", "-b", "echo", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    pids = ready_pids(d, 2)
    victim = connect(addr)
    echo(victim, b"first")
    p_victim = conn_worker(d, victim)
    other = connect(addr)
    echo(other, b"second")
    p_other = conn_worker(d, other)
    # Least-loaded dispatch: the second connection went to the idle worker.
    assert sorted((p_victim, p_other)) == sorted(pids), (p_victim, p_other, pids)
    idx = pids.index(p_victim)
    vport = victim.getsockname()[1]
    mark = len(d.lines)
    os.kill(p_victim, signal.SIGKILL)
    # Its client sees the end (acceptd kept no copy of the connection)...
    eof_or_reset(victim)
    victim.close()
    # ...while the other worker's connection goes on, during and after.
    echo(other, b"during the restart")
    d.wait_line(r"127\.0\.0\.1:%d: connection lost with worker pid %d$" % (vport, p_victim),
                start=mark)
    m = d.wait_line(r"worker %d pid %d killed by signal 9 after [\d.]+s; restarting in (\d+) ms$"
                    % (idx, p_victim), start=mark)
    assert m.group(1) == "100", "first early death: restart delay %s ms, want 100" % m.group(1)
    new = int(d.wait_line(r"worker %d pid (\d+) ready$" % idx, start=mark).group(1))
    assert new != p_victim and not pid_dead(new)
    echo(other, b"after the restart")
    # New connections are served; the first by the new worker, which
    # holds none.
    fresh = connect(addr)
    echo(fresh, b"new")
    assert conn_worker(d, fresh) == new, d.log()
    assert exchange(addr, b"one more") == b"one more"
    assert live_children(d.pid) == sorted((new, p_other)), (live_children(d.pid), new, p_other)
    wait_counters(d, active=2, total=4, failed=1)
    other.close()
    fresh.close()
    wait_counters(d, active=0, total=4, failed=1)
    log = d.log()
    assert len(re.findall(r"connection lost with worker", log)) == 1, log
    assert len(re.findall(r"pid %d killed by signal" % p_victim, log)) == 1, log
    assert d.stop() == 0


@case
def master_killed_workers_finish_and_exit():
    """End of file on the channel means acceptd has gone: an idle worker
    exits at once, one holding a connection serves it to its end first -
    for the built-in pool and both example workers."""
    for kind in ("builtin", "c", "py"):
        tail = ["-b", "echo"] if kind == "builtin" else ["--fd-passing", "--"] + worker_argv(kind)
        d = Daemon(["-v", "-w", "2", "-l", "127.0.0.1:0"] + tail)
        addr, = d.listening()
        pids = ready_pids(d, 2)
        c = connect(addr)
        if kind != "builtin":
            first_line(c)
        echo(c, b"before")
        holder = conn_worker(d, c)
        idle, = [p for p in pids if p != holder]
        try:
            os.kill(d.pid, signal.SIGKILL)
            d.proc.wait(5)
            wait_until(lambda: pid_dead(idle), 5, "%s: idle worker %d to exit" % (kind, idle))
            echo(c, b"acceptd is gone")
            assert not pid_dead(holder), "%s: worker dropped its connection" % kind
            c.close()
            wait_until(lambda: pid_dead(holder), 5, "%s: worker %d to exit" % (kind, holder))
        finally:
            c.close()
            for p in pids:
                if not pid_dead(p):
                    os.kill(p, signal.SIGKILL)


# --- 2. a worker that crashes at once: bounded respawn rate ----------------

@case
def crash_on_start_backs_off():
    d = Daemon(["-v", "--fd-passing", "-w", "2", "-l", "127.0.0.1:0", "--", "/bin/false"])
    addr, = d.listening()
    # Connected by the kernel, but with no worker ready acceptd must leave
    # it in the backlog: not accept it, not reset it.
    pending = connect(addr)
    ticks = cpu_ticks(d.pid)
    time.sleep(4)                   # a measuring window, not synchronisation
    used = cpu_ticks(d.pid) - ticks
    deaths = re.findall(r"worker (\d+) pid (\d+) exited with status 1 after [\d.]+s; "
                        r"restarting in (\d+) ms$", d.log(), re.M)
    log = d.log()
    for idx in ("0", "1"):
        delays = [int(ms) for i, _p, ms in deaths if i == idx]
        assert 4 <= len(delays) <= 8, "worker %s: %d starts in 4 s; log:\n%s" % (
            idx, len(delays), log)
        assert delays == [100 << k for k in range(len(delays))], (
            "worker %s: restart delays %s do not double from 100 ms" % (idx, delays))
    pids = [int(p) for _i, p, _ms in deaths]
    assert len(set(pids)) == len(pids), "a pid died twice? %s" % pids
    assert used <= 40, "acceptd used %d ticks of CPU in 4 s of crash loop" % used
    assert d.proc.poll() is None, "acceptd exited; log:\n" + log
    assert " ready" not in log and "connection 127" not in log, log
    assert nothing_for(pending, 0.3)
    assert counters(d) == {"active": 0, "total": 0, "refused": 0, "failed": 0}
    pending.close()
    assert d.stop() == 0


@case
def healthy_run_resets_back_off():
    """Three crashes on start take the restart delay to 400 ms; a run of
    10 s (HEALTHY_MS) clears it: that worker's exit is followed by a
    restart at once, and the next crash waits 100 ms again, not 800 and
    1600.  (The 30 s cap is in the unit tests: a crash loop reaches it
    only after some 50 s.)"""
    starts = os.path.join(tmpdir(), "starts")
    d = Daemon(["-v", "--fd-passing", "-w", "1", "-l", "127.0.0.1:0", "--",
                sys.executable, FLAKY, starts, "fail", "fail", "fail", "live=10.2", "fail",
                "stay"])
    d.listening()
    healthy = int(d.wait_line(r"worker 0 pid (\d+) ready$").group(1))
    last = int(d.wait_line(r"worker 0 pid (?!%d )(\d+) ready$" % healthy, 20).group(1))
    exits = re.findall(r"worker 0 pid (\d+) exited with status (\d+) after ([\d.]+)s; "
                       r"restarting in (\d+) ms$", d.log(), re.M)
    log = d.log()
    assert [(int(st), int(ms)) for _p, st, _s, ms in exits] == [
        (1, 100), (1, 200), (1, 400), (0, 0), (1, 100)], (
        "exit statuses and restart delays, want three early crashes, the "
        "healthy run, one more crash; log:\n" + log)
    assert int(exits[3][0]) == healthy and float(exits[3][2]) >= 10.0, exits[3]
    with open(starts) as f:
        assert len(f.read()) == 6, "starts: want 6; log:\n" + log
    assert not pid_dead(last) and live_children(d.pid) == [last]
    assert d.stop() == 0


# --- 3. 10,000 idle connections held by two workers ------------------------

N_IDLE = 10000


def connect_many(sa, n, batch=500):
    """n connected sockets to sa, connecting `batch` at a time without
    blocking on each."""
    socks = []
    while len(socks) < n:
        group = []
        for _ in range(min(batch, n - len(socks))):
            s = socket.socket()
            s.setblocking(False)
            err = s.connect_ex(sa)
            assert err in (0, 115), os.strerror(err)   # 115: EINPROGRESS
            group.append(s)
        poller = select.poll()
        for s in group:
            poller.register(s, select.POLLOUT)
        waiting = {s.fileno(): s for s in group}
        deadline = time.monotonic() + 20
        while waiting:
            left = deadline - time.monotonic()
            assert left > 0, "%d connects still pending after 20 s" % len(waiting)
            for fd, _ev in poller.poll(left * 1000):
                s = waiting.pop(fd)
                poller.unregister(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                assert err == 0, "connect #%d: %s" % (len(socks), os.strerror(err))
        socks.extend(group)
    return socks


def assert_none_closed(d):
    """In a burst a worker's channel queue fills; the connection acceptd
    has just accepted must wait for room, never be closed (see
    busy_worker_connections_wait_in_backlog)."""
    lost = re.findall(r"\S+: no worker took it: .*", d.log())
    assert not lost, "%d connection(s) accepted, then closed: %s" % (len(lost), lost[0])


@case
def ten_thousand_idle_connections():
    # The test holds N_IDLE client sockets, each worker about half as many
    # connections: 25000 leaves room; the hard limit may be raised only with
    # CAP_SYS_RESOURCE, and N_IDLE + 1000 will do too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 25000
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError) as e:
        if hard < N_IDLE + 1000:
            raise Skip("cannot raise RLIMIT_NOFILE to %d (hard %d): %s" % (want, hard, e))
        want = hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    if hi - lo + 1 < N_IDLE + 1000:
        raise Skip("ephemeral port range %d-%d too small" % (lo, hi))
    socks = []
    try:
        # Children inherit the raised limit.
        d = Daemon(["-v", "-w", "2", "-c", "20000", "-b", "echo", "-l", "127.0.0.1:0"])
        addr, = d.listening()
        pids = ready_pids(d, 2)
        try:
            socks = connect_many(parse_addr(addr)[1], N_IDLE)
        except OSError as e:
            raise Skip("cannot open %d client sockets: %s" % (N_IDLE, e))
        try:
            wait_counters(d, 30, active=N_IDLE, failed=0)
        except AssertionError:
            assert_none_closed(d)
            raise
        # All still open: a sample echoes, through both workers.
        for i in range(0, N_IDLE, 100):
            s = socks[i]
            s.setblocking(True)
            echo(s, b"conn %d\n" % i)
        assert live_children(d.pid) == sorted(pids), (live_children(d.pid), pids)
        # Least-loaded dispatch: each worker holds about half (its fds:
        # 0-2, channel, epoll, and one per connection).
        held = [len(os.listdir("/proc/%d/fd" % p)) - 5 for p in pids]
        assert sum(held) == N_IDLE, (held, N_IDLE)
        assert min(held) >= N_IDLE // 2 - 500, "unbalanced: %s" % held
        # acceptd itself keeps no copy of them.
        assert len(os.listdir("/proc/%d/fd" % d.pid)) < 50
        wait_counters(d, active=N_IDLE, total=N_IDLE, failed=0, refused=0)
        for s in socks:
            s.close()
        socks = []
        wait_counters(d, 30, active=0, total=N_IDLE, failed=0)
        assert live_children(d.pid) == sorted(pids)
        held = [len(os.listdir("/proc/%d/fd" % p)) for p in pids]
        assert held == [5, 5], "fds left in the workers: %s" % held
        assert exchange(addr, b"still fine") == b"still fine"
        assert d.stop(20) == 0
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))


@case
def busy_worker_connections_wait_in_backlog():
    """A worker that does not read its channel for a moment (max=0): acceptd
    hands it connections until the channel's queue is full, and the rest
    must wait in the listen backlog - not be accepted and then closed."""
    # Well over what the channel's queue holds (a CONN message with its fd
    # costs the sender some 770 bytes of its send buffer).
    with open("/proc/sys/net/core/wmem_default") as f:
        n = max(600, int(f.read()) // 256)
    if n > 5000:
        raise Skip("net.core.wmem_default is large: %d connections needed" % n)
    d = Daemon(["-v", "--fd-passing", "-w", "1", "-c", "5000", "-l", "127.0.0.1:0",
                "--", sys.executable, STALL])
    addr, = d.listening()
    worker, = ready_pids(d, 1)
    socks = connect_many(parse_addr(addr)[1], n, batch=n)
    with closing_all(socks):
        # acceptd has done what it will with the burst once it found the
        # channel full and parked the listener, the rest waiting in the
        # backlog: nothing moves until the worker reads.
        try:
            wait_until(lambda: backlog_parked(d.pid, port_of(addr)), 20,
                       "the channel full and the listener parked")
        except AssertionError as e:
            raise AssertionError("%s: %d connections to one busy worker, counters %s; "
                                 "log:\n%s" % (e, n, counters(d), d.log()))
        early = counters(d)
        lost = re.findall(r"no worker took it.*", d.log())
        os.kill(worker, signal.SIGUSR1)         # the worker gets to its channel
        bad = []
        deadline = time.monotonic() + 20
        for i, s in enumerate(socks):
            s.setblocking(True)
            try:
                echo(s, b"%d" % i, timeout=max(0.05, deadline - time.monotonic()))
            except (AssertionError, OSError) as e:
                bad.append((i, str(e)))
        assert not (lost or early["failed"] or bad), (
            "a burst of %d connections to one busy worker: %d closed by "
            "acceptd (%s), counters %s; clients not served: %d, first %s"
            % (n, len(lost), lost[:1], early, len(bad), bad[:1]))
        assert early["active"] < n, early
        wait_counters(d, active=n, total=n, failed=0)
    wait_counters(d, active=0, total=n, failed=0)
    assert d.stop() == 0


# --- 4. persistent workers: the C and Python examples ----------------------

FIRST = r"^worker (\d+): (tcp|unix) (\S*) ?(\d*) via (\S+), connnum (\d+)\n$"


def first_line(sock):
    line = read_line(sock)
    m = re.match(FIRST, line)
    assert m, "first line %r" % line
    return {"pid": int(m.group(1)), "proto": m.group(2), "ip": m.group(3),
            "port": m.group(4), "listener": m.group(5), "connnum": int(m.group(6))}


def example_first_line_and_echo(kind):
    top = tmpdir()
    path = os.path.join(top, "sock")
    d = Daemon(["-v", "--fd-passing", "-w", "2", "-l", "127.0.0.1:0", "-l", "0",
                "-l", "unix:" + path, "--"] + worker_argv(kind))
    v4, dual, unix = d.listening(3)
    pids = ready_pids(d, 2)
    assert live_children(d.pid) == sorted(pids)
    # TCP on 127.0.0.1
    with connect(v4) as c:
        f = first_line(c)
        assert f["pid"] in pids, (f, pids)
        assert (f["proto"], f["ip"], f["port"], f["listener"], f["connnum"]) == (
            "tcp", "127.0.0.1", str(c.getsockname()[1]), v4, 1), f
        echo(c, b"hello\n")
        echo(c, b"x" * 100000)
    # Dual stack: an IPv4 client shows as plain IPv4.
    with connect(dual, socket.AF_INET) as c:
        f = first_line(c)
        assert (f["proto"], f["ip"], f["port"], f["listener"]) == (
            "tcp", "127.0.0.1", str(c.getsockname()[1]), dual), f
        echo(c, b"over the dual-stack socket")
    # A unix listener: the line says unix and names the listener.
    with connect(unix) as c:
        f = first_line(c)
        assert (f["proto"], f["listener"], f["connnum"]) == ("unix", "unix:" + path, 1), f
        assert f["pid"] in pids
        echo(c, b"over unix")
    wait_counters(d, active=0, total=3, failed=0)
    assert live_children(d.pid) == sorted(pids), "workers changed"
    assert d.stop() == 0
    assert all(pid_dead(p) for p in pids)


@case
def c_worker_first_line_and_echo():
    example_first_line_and_echo("c")


@case
def py_worker_first_line_and_echo():
    example_first_line_and_echo("py")


def example_max1_waits_in_backlog(kind):
    d = Daemon(["-v", "--fd-passing", "-w", "2", "-l", "127.0.0.1:0", "--"]
               + worker_argv(kind))
    addr, = d.listening()
    pids = ready_pids(d, 2)
    # Three at once (likely in one wake-up of acceptd, one accept batch):
    # the backlog is first in, first out.
    c1, c2, c3 = connect(addr), connect(addr), connect(addr)
    f1, f2 = first_line(c1), first_line(c2)
    assert sorted((f1["pid"], f2["pid"])) == sorted(pids), (f1, f2, pids)
    assert (f1["connnum"], f2["connnum"]) == (1, 2), (f1, f2)
    # Both workers said max=1 and hold one each: the third waits in the
    # backlog, unaccepted - not refused, not reset.
    p3 = c3.getsockname()[1]
    assert nothing_for(c3, 0.5)
    assert not re.search(r"connection 127\.0\.0\.1:%d " % p3, d.log()), d.log()
    mark = len(d.lines)
    c1.close()
    f3 = first_line(c3)
    assert f3["pid"] == f1["pid"], (f3, f1)
    assert f3["connnum"] == 2, f3           # c2 and c3
    # acceptd took it only after the worker reported the first one DONE.
    end = d.wait_line(r"end 127\.0\.0\.1:%s worker pid %d" % (f1["port"], f1["pid"]),
                      start=mark)
    conn = d.wait_line(r"connection 127\.0\.0\.1:%d " % p3, start=mark)
    lines = d.lines[mark:]
    assert lines.index(end.string) < lines.index(conn.string), "\n".join(lines)
    echo(c3, b"third")
    echo(c2, b"second")
    c2.close()
    c3.close()
    wait_counters(d, active=0, total=3, failed=0)
    assert d.stop() == 0


@case
def c_worker_max1_waits_in_backlog():
    example_max1_waits_in_backlog("c")


@case
def py_worker_max1_waits_in_backlog():
    example_max1_waits_in_backlog("py")


def example_sigterm_finishes_connection(kind):
    tail = ["-b", "echo"] if kind == "builtin" else ["--fd-passing", "--"] + worker_argv(kind)
    d = Daemon(["-v", "-w", "2", "-l", "127.0.0.1:0"] + tail)
    addr, = d.listening()
    pids = ready_pids(d, 2)
    c = connect(addr)
    if kind != "builtin":
        first_line(c)
    echo(c, b"first")
    busy = conn_worker(d, c)
    idle, = [p for p in pids if p != busy]
    echo(c, b"before")
    d.signal(signal.SIGTERM)
    d.wait_line(r"SIGTERM: stopping; 1 connection\(s\) open")
    # STOP: the idle worker exits at once, the busy one finishes first.
    wait_until(lambda: pid_dead(idle), 5, "the idle worker %d to exit on STOP" % idle)
    echo(c, b"after SIGTERM")
    assert d.proc.poll() is None, "acceptd exited with a connection open"
    assert not pid_dead(busy)
    c.close()
    assert d.wait(10) == 0, d.log()
    assert pid_dead(busy)
    log = d.log()
    assert not re.search(r"exited with status [1-9]|killed by signal|connection lost", log), log
    assert re.search(r"stopped: active 0 total 1 refused 0 failed 0", log), log


@case
def builtin_sigterm_finishes_connection():
    example_sigterm_finishes_connection("builtin")


@case
def c_worker_sigterm_finishes_connection():
    example_sigterm_finishes_connection("c")


@case
def py_worker_sigterm_finishes_connection():
    example_sigterm_finishes_connection("py")


# --- 5. protocol version mismatch, and no HELLO at all ---------------------

@case
def wrong_version_stopped_and_restarted():
    d = Daemon(["-v", "--drain", "0", "--fd-passing", "-w", "1", "-l", "127.0.0.1:0",
                "--", sys.executable, BADVERSION])
    addr, = d.listening()
    pending = connect(addr)
    rx = (r"worker 0 pid (\d+): protocol mismatch: acceptd speaks version 1, "
          r"worker said 'HELLO 2 max=0'$")
    wait_until(lambda: len(re.findall(rx, d.log(), re.M)) >= 3, 15,
               "three protocol mismatch lines")
    log = d.log()
    pids = [int(p) for p in re.findall(rx, log, re.M)]
    assert len(set(pids)) == len(pids), "one line per worker started: %s" % pids
    for p in pids[:2]:
        wait_until(lambda: pid_dead(p), 5, "worker %d to be stopped" % p)
    # Stopped, then started again under the crash back-off.
    delays = [int(d.wait_line(r"worker 0 pid %d killed by signal 9 after [\d.]+s; "
                              r"restarting in (\d+) ms$" % p).group(1)) for p in pids[:2]]
    assert delays == [100, 200], delays
    assert " ready" not in d.log()
    assert nothing_for(pending, 0.2)
    pending.close()
    assert d.stop() == 0


@case
def no_hello_stopped_after_10s():
    d = Daemon(["-v", "--drain", "0", "--fd-passing", "-w", "1", "-l", "127.0.0.1:0",
                "--", sys.executable, BADVERSION, "--silent"])
    addr, = d.listening()
    t0 = time.monotonic()
    first, = wait_until(lambda: live_children(d.pid), 5, "the worker to start")
    pending = connect(addr)
    m = d.wait_line(r"worker 0 pid (\d+): no HELLO within 10 s$", timeout=15)
    took = time.monotonic() - t0
    assert int(m.group(1)) == first, (m.group(0), first)
    assert 9.5 <= took < 13, "stopped %.1f s after start" % took
    d.wait_line(r"worker 0 pid %d killed by signal 9 after 1\d\.\ds; restarting in \d+ ms$"
                % first)
    wait_until(lambda: pid_dead(first), 5, "the silent worker to die")
    second, = wait_until(lambda: live_children(d.pid), 5, "a new worker")
    assert second != first
    assert nothing_for(pending, 0.2)
    pending.close()
    assert d.stop() == 0


# --- 6. the C example, not started by acceptd --------------------------------

def by_hand(argv, redirect, pass_fds=(), timeout=10):
    env = dict(os.environ)
    env.pop("ACCEPTD_WORKER_FD", None)
    p = subprocess.run(["/bin/sh", "-c", 'exec "$@" ' + redirect, "sh"] + argv,
                       env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, pass_fds=pass_fds)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace").splitlines()


@case
def c_worker_by_hand():
    need_workers()
    # fd 3 closed, not a socket, a stream socket, a channel closed at once
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sp, sq = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sq.close()
    with a, b, sp:
        notsock = "Socket operation on non-socket"
        for redirect, fds, why in (("3<&-", (), "Bad file descriptor"),
                                   ("3</dev/null", (), notsock),
                                   ("3<&%d" % b.fileno(), (b.fileno(),), notsock),
                                   ("3<&%d" % sp.fileno(), (sp.fileno(),), "Broken pipe")):
            rc, out, err = by_hand([C_WORKER], redirect, fds)
            assert rc == 1, (redirect, rc, err)
            assert out == b"", (redirect, out)
            assert len(err) == 1, (redirect, err)
            assert "not started by acceptd --fd-passing" in err[0], (redirect, err)
            assert why in err[0], (redirect, err, why)


@case
def examples_answer_unknown_version_and_exit():
    """An acceptd that offers only version 2: each example still answers
    with its own version, then exits 1 with a message (VERSIONS)."""
    need_workers()
    for argv in ([C_WORKER], [sys.executable, PY_WORKER]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with ours, theirs:
            ours.send(b"HELLO 2")
            rc, out, err = by_hand(argv, "3<&%d" % theirs.fileno(), (theirs.fileno(),))
            theirs.close()
            ours.settimeout(5)
            assert ours.recv(4096) == b"HELLO 1 max=1", argv
            assert rc == 1, (argv, rc, err)
            assert err and "protocol" in err[-1].lower(), (argv, err)


# --- 7. the state a worker starts in ----------------------------------------

def ask_state(addr, family=None):
    c = connect(addr, family)
    rep = json.loads(read_line(c))
    return c, rep


def env_of(rep):
    return [v.split("=", 1) for v in rep["environ"]]


@case
def persistent_worker_state():
    top = tmpdir()
    path = os.path.join(top, "sock")
    notify_path = os.path.join(top, "notify")
    out = os.path.join(top, "stdio")
    open(out, "w").close()
    q = shlex.quote(out)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    stale = {"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "30000000",
             "WATCHDOG_PID": "1", "LISTEN_PID": "1", "LISTEN_FDS": "2",
             "LISTEN_FDNAMES": "a:b", "TCPREMOTEIP": "bogus", "TCPREMOTEPORT": "1",
             "PROTO": "bogus", "ACCEPTD_LISTENER": "bogus", "TCPCONNNUM": "99",
             "ACCEPTD_TEST_KEEP": "kept"}
    with notify:
        # acceptd's own fds 0 and 1 are a file, not /dev/null already.
        d = Daemon(["-v", "--fd-passing", "-w", "2", "-l", "127.0.0.1:0",
                    "-l", "unix:" + path, "--"] + STATE,
                   argv0=["/bin/sh", "-c", 'exec "$0" "$@" <%s >>%s' % (q, q), ACCEPTD],
                   extra_env=stale, preexec_fn=_ignore_and_block)
        addr, uaddr = d.listening(2)
        notify_until(notify)      # the socket was acceptd's
    pids = ready_pids(d, 2)
    assert [os.readlink("/proc/%d/fd/%d" % (d.pid, i)) for i in (0, 1)] == [out, out]
    mine = sig_fields("\n".join("%s:%s" % (k, v) for k, v in status_fields(d.pid).items()
                                if k in ("SigBlk", "SigIgn")))
    assert mine["SigIgn"] & (1 << (signal.SIGHUP - 1)), "precondition: SIGHUP ignored"
    assert mine["SigBlk"] & (1 << (signal.SIGQUIT - 1)), "precondition: SIGQUIT blocked"
    stderr_link = os.readlink("/proc/%d/fd/2" % d.pid)
    c1, r1 = ask_state(addr)
    c2, r2 = ask_state(addr)
    for c, r in ((c1, r1), (c2, r2)):
        assert r["pid"] in pids, (r["pid"], pids)
        assert r["ppid"] == d.pid
        assert r["pgid"] == r["pid"], "worker not a process group leader: %s" % r
        assert r["fds"] == [0, 1, 2, 3], "worker started with fds %s" % r["fds"]
        fd = r["fd"]
        assert fd["0"]["link"] == "/dev/null" and fd["1"]["link"] == "/dev/null", fd
        assert fd["2"]["link"] == stderr_link, (fd["2"], stderr_link)
        assert fd["3"]["sock"] and fd["3"]["type"] == socket.SOCK_SEQPACKET and \
            fd["3"]["family"] == socket.AF_UNIX, fd["3"]
        sig = sig_fields(r["sig"])
        assert sig["SigBlk"] == 0, "worker SigBlk %x" % sig["SigBlk"]
        assert sig["SigIgn"] == 0, "worker ignores signals %s" % [
            n + 1 for n in range(64) if sig["SigIgn"] >> n & 1]
        env = env_of(r)
        wfd = [v for k, v in env if k == "ACCEPTD_WORKER_FD"]
        assert wfd == ["3"], "ACCEPTD_WORKER_FD entries %s" % wfd
        leaked = sorted({k for k, _v in env if k in PLUMBING + PER_CONN})
        assert not leaked, "reached the worker: %s" % leaked
        assert ["ACCEPTD_TEST_KEEP", "kept"] in env
        assert r["hello"].split()[0] == "HELLO" and "1" in r["hello"].split()[1:], r["hello"]
        # the CONN message: this very connection
        m = r["conn"]
        assert m["id"].isdigit(), m
        assert (m["proto"], m["remote"], m["rport"], m["local"], m["lport"], m["listener"]) == (
            "TCP", "127.0.0.1", str(c.getsockname()[1]), "127.0.0.1", str(port_of(addr)),
            addr), m
        assert r["names"]["peer"] == list(c.getsockname()), r["names"]
        assert r["names"]["sock"] == list(c.getpeername()), r["names"]
        assert r["conn_fd"]["sock"] and not r["conn_fd"]["nonblock"], r["conn_fd"]
    # least loaded: one each; connnum counts the client's open connections
    assert sorted((r1["pid"], r2["pid"])) == sorted(pids), (r1["pid"], r2["pid"])
    assert (r1["conn"]["connnum"], r2["conn"]["connnum"]) == ("1", "2")
    assert r1["conn"]["id"] != r2["conn"]["id"]
    c1.close()
    d.wait_line(r"end 127\.0\.0\.1:%d " % r1["names"]["peer"][1])
    c3, r3 = ask_state(addr)
    assert r3["conn"]["connnum"] == "2", r3["conn"]       # c2 and c3
    assert r3["conn"]["id"] not in (r1["conn"]["id"], r2["conn"]["id"])
    # a unix client: its credentials, no TCP keys
    c4, r4 = ask_state(uaddr)
    m = r4["conn"]
    assert (m["proto"], m["listener"], m["connnum"]) == ("UNIX", uaddr, "1"), m
    assert (m["uid"], m["gid"], m["pid"]) == (str(os.getuid()), str(os.getgid()),
                                              str(os.getpid())), m
    assert not {"remote", "rport", "local", "lport"} & set(m), m
    for c in (c2, c3, c4):
        c.close()
    wait_counters(d, active=0, total=4, failed=0)
    assert d.stop() == 0


@case
def persistent_worker_stale_worker_fd_var():
    """acceptd itself run with ACCEPTD_WORKER_FD set (say, started from a
    worker of another acceptd): its workers must see only their own, or a
    C worker (glibc's getenv takes the first) looks for its channel on the
    wrong fd.  (The C example cannot show it here: its libtool wrapper is a
    bash script, and bash rebuilds the environment without duplicates.)"""
    d = Daemon(["-v", "--fd-passing", "-w", "1", "-l", "127.0.0.1:0", "--",
                sys.executable, STATE_PY], extra_env={"ACCEPTD_WORKER_FD": "9"})
    addr, = d.listening()
    c, r = ask_state(addr)
    c.close()
    wfd = [v for k, v in env_of(r) if k == "ACCEPTD_WORKER_FD"]
    assert wfd == ["3"], "worker environment has ACCEPTD_WORKER_FD entries %s" % wfd
    assert d.stop() == 0


@case
def builtin_worker_state():
    out = os.path.join(tmpdir(), "stdio")
    open(out, "w").close()
    q = shlex.quote(out)
    # acceptd's own fds 0 and 1 are a file, its signals as a careless
    # parent left them.
    d = Daemon(["-v", "-w", "2", "-b", "echo", "-l", "127.0.0.1:0"],
               argv0=["/bin/sh", "-c", 'exec "$0" "$@" <%s >>%s' % (q, q), ACCEPTD],
               preexec_fn=_ignore_and_block)
    addr, = d.listening()
    pids = ready_pids(d, 2)
    assert [os.readlink("/proc/%d/fd/%d" % (d.pid, i)) for i in (0, 1)] == [out, out]
    assert int(status_fields(d.pid)["SigIgn"].strip(), 16) & (1 << (signal.SIGHUP - 1))
    lport = port_of(addr)
    listener, = tcp_inodes(lport, state="0A")

    def check(pid, conns):
        f = status_fields(pid)
        blk, ign = int(f["SigBlk"].strip(), 16), int(f["SigIgn"].strip(), 16)
        assert blk == 0, "worker %d SigBlk %x" % (pid, blk)
        assert ign == SIGPIPE_BIT, "worker %d ignores signals %s, want only SIGPIPE" % (
            pid, [n + 1 for n in range(64) if ign >> n & 1])
        assert proc_stat(pid)[2] == pid, "worker %d pgid %d" % (pid, proc_stat(pid)[2])
        links = fd_targets(pid)
        assert {0, 1, 2, 3} <= set(links), links
        assert links[0] == links[1] == "/dev/null", links
        assert links[2] == os.readlink("/proc/%d/fd/2" % d.pid), links
        ch = sock_inode(links[3])
        assert ch and unix_type(ch) == socket.SOCK_SEQPACKET, (links[3], unix_type(ch))
        rest = {fd: ln for fd, ln in links.items() if fd > 3}
        epolls = [fd for fd, ln in rest.items() if ln == "anon_inode:[eventpoll]"]
        assert len(epolls) == 1, rest
        socks = sorted(sock_inode(ln) for fd, ln in rest.items() if fd not in epolls)
        assert listener not in socks, "worker %d holds the listener" % pid
        assert socks == sorted(conns), "worker %d: fds %s, want the channel, epoll " \
            "and connections %s" % (pid, links, conns)

    for p in pids:
        check(p, [])
    c = connect(addr)
    echo(c, b"x")
    holder = conn_worker(d, c)
    inode, = tcp_inodes(lport, c.getsockname()[1])
    check(holder, [inode])
    check([p for p in pids if p != holder][0], [])
    mark = len(d.lines)
    c.close()
    d.wait_line(r"end 127\.0\.0\.1:\d+ worker pid %d" % holder, start=mark)
    check(holder, [])
    assert d.stop() == 0


# --- 8. usage errors ----------------------------------------------------------

def mentions(msg, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", msg) is not None


@case
def usage_errors():
    for args, names, value in (
            (["--fd-passing", "-l", "127.0.0.1:0"], ["--fd-passing"], None),
            (["-w", "2", "-l", "127.0.0.1:0", "--", "/bin/cat"], ["--fd-passing"], None),
            (["-w", "0"], ["-w", "--workers"], "0"),
            (["-w", "5000"], ["-w", "--workers"], "5000"),
            (["--workers=abc"], ["-w", "--workers"], "abc")):
        rc, out, err = run_acceptd(args)
        assert rc == 2, "%s: exit %d, expected 2; stderr %s" % (args, rc, err)
        assert out == "" and len(err) == 1, (args, out, err)
        msg = err[0]
        assert msg.startswith("acceptd: "), msg
        assert any(mentions(msg, n) for n in names), "%r does not name %s" % (msg, names)
        if value is not None:
            assert mentions(msg, value), "%r does not name %r" % (msg, value)
    rc, _out, err = run_acceptd(["-w", "2", "-l", "127.0.0.1:0", "--", "/bin/cat"])
    assert mentions(err[0], "--workers") or mentions(err[0], "-w"), err


# --- 9. single-connection mode through the pool ------------------------------

@case
def accept_yes_builtin_through_pool():
    if not SSA:
        raise Skip("systemd-socket-activate not installed")
    port = free_port()
    d = Daemon(["-v", "-b", "echo"],
               argv0=[SSA, "-a", "-l", "127.0.0.1:%d" % port, "--", ACCEPTD], tree=True)
    d.wait_line(r"Listening on 127\.0\.0\.1:%d as 3\." % port)
    data = b"through the pool\n" + b"z" * 100000
    me, got = talk(("127.0.0.1", port), data)
    assert got == data, (len(got), d.log())
    m = d.wait_line(r"Child (\d+) died with code (\d+)")
    assert m.group(2) == "0", d.log()
    acceptd_pid = int(m.group(1))
    worker = int(d.wait_line(r"worker 0 pid (\d+) ready$").group(1))
    assert int(d.wait_line(r"connection 127\.0\.0\.1:%d on \S+ worker pid (\d+)$"
                           % me[1]).group(1)) == worker
    assert worker != acceptd_pid
    assert len(re.findall(r"worker \d+ pid \d+ ready", d.log())) == 1, d.log()
    wait_until(lambda: pid_dead(worker), 5, "the worker %d to exit" % worker)
    assert pid_dead(acceptd_pid)
    wait_until(lambda: not [p for p, s in proc_children(d.pid) if s != "Z"], 5,
               "no process left under systemd-socket-activate")


@case
def done_for_another_workers_connection_is_ignored():
    """A worker that sends DONE for an id another worker holds releases
    nothing: the connection still counts against -c and -C, and the
    master keeps its copy (so -t still ends it)."""
    lying = os.path.join(HELPERS, "pool_foreign_done.py")
    d = Daemon(["-v", "--fd-passing", "-w", "2", "-l", "127.0.0.1:0", "--",
                sys.executable, lying])
    addr, = d.listening()
    ready_pids(d, 2)
    held = {}
    for _ in range(20):            # until both workers hold one
        c = connect(addr)
        pid, ident = read_line(c).split()
        if pid in held:
            c.close()
            continue
        held[pid] = (c, ident)
        if len(held) == 2:
            break
    assert len(held) == 2, "one worker took every connection: %s" % d.log()
    wait_counters(d, active=2)
    (a, a_id), (b, b_id) = held.values()
    a.sendall(b"done %s\n" % b_id.encode())
    assert read_line(a) == "sent\n"
    d.wait_line(r"DONE for 1 connection\(s\) of other workers: ignored")
    assert counters(d)["active"] == 2, d.log()
    b.sendall(b"bye")
    a.sendall(b"bye")
    wait_counters(d, active=0)
    a.close()
    b.close()
    assert d.stop() == 0


run()
