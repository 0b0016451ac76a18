"""exhaustion.py - acceptd out of file descriptors: accept pauses on a
timer instead of spinning on a readable listener, logs at most one line a
second, and serves again by itself once fds come back.  Also: out of
processes (RLIMIT_NPROC), RLIMIT_NOFILE fitted to -c at start, storms of
clients that reset at once, and EMFILE while reading PROXY headers."""
import os
import pwd
import re
import resource
import selectors
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import Daemon, case, exchange, run  # noqa: E402
from acceptd_test import (ACCEPTD, Skip, connect, parse_addr,  # noqa: E402
                          proc_children, read_all, tmpdir, wait_until)


def cpu_ticks(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@case
def emfile_pauses_then_recovers():
    d = Daemon(["-l", "127.0.0.1:0"])
    addr, = d.listening()
    # Leave acceptd exactly the fds it has: the next accept4 gets EMFILE.
    n = open_fds(d.pid)
    soft, hard = resource.prlimit(d.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (n, hard))
    clients = []
    for _ in range(5):
        c = socket.create_connection(("127.0.0.1", int(addr.rsplit(":", 1)[1])), 5)
        c.sendall(b"wait")
        clients.append(c)
    d.wait_line(r"warning: .*Too many open files; pausing accept")
    t0, c0, l0 = time.monotonic(), cpu_ticks(d.pid), len(d.lines)
    # A bounded look at an absence: two seconds of a storm that cannot be
    # served.  A spinning loop would burn ~200 ticks here.
    time.sleep(2.0)
    dt, dc = time.monotonic() - t0, cpu_ticks(d.pid) - c0
    tick = os.sysconf("SC_CLK_TCK")
    assert dc / tick / dt < 0.05, "acceptd used %.0f%% CPU while paused" % (100 * dc / tick / dt)
    warnings = [ln for ln in d.lines[l0:] if "pausing accept" in ln]
    assert len(warnings) <= 3, warnings
    # Give fds back: the waiting clients are served, promptly.
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (soft, hard))
    t1 = time.monotonic()
    for c in clients:
        c.shutdown(socket.SHUT_WR)
        c.settimeout(5)
        assert c.recv(16) == b"wait"
        c.close()
    assert time.monotonic() - t1 < 1.0, "recovery took %.2fs" % (time.monotonic() - t1)
    assert exchange(addr, b"again") == b"again"
    assert d.stop() == 0
    assert not re.search(r"error", d.log()), d.log()


# --- shared by the cases below ---------------------------------------------

# Sets JOURNAL_STREAM to the dev:ino of whatever fd 2 is (as logging.py
# does), so every line carries its level: <3> error, <4> warning, <5>
# notice, <6> info.  On plain stderr an error line has no marker at all.
JOURNAL_WRAP = ["sh", "-c",
                'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"', "sh"]
# Writes one byte (so the client knows its handler runs), then holds the
# connection until the client closes it.  One process: sh execs cat.
HOLD = ["/bin/sh", "-c", "printf x; exec cat >/dev/null"]
PROXY_V1 = b"PROXY TCP4 192.0.2.1 127.0.0.1 1111 80\r\n"
COUNTERS = r"^<5>active (\d+) total (\d+) refused (\d+) failed (\d+)$"


class LevelDaemon(Daemon):
    """acceptd with journal-style level prefixes; each log line's arrival
    time is kept in self.times (same index as self.lines), for rates."""

    def __init__(self, args, binary=ACCEPTD, **kw):
        self.times = []
        super().__init__(args, argv0=JOURNAL_WRAP + [binary], **kw)

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.times.append(time.monotonic())
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def at_most(self, level, start=0):
        """Log lines of level `level` or more severe (<0>..<level>)."""
        with self.cond:
            return [ln for ln in self.lines[start:]
                    if re.match(r"<[0-%d]>" % level, ln)]

    def stamped(self, pattern):
        """Arrival times of the lines that match pattern."""
        rx = re.compile(pattern)
        with self.cond:
            return [t for ln, t in zip(self.lines, self.times) if rx.search(ln)]

    def counters(self):
        """(active, total, refused, failed) from one SIGUSR1 line."""
        start = len(self.lines)
        self.signal(signal.SIGUSR1)
        m = self.wait_line(COUNTERS, start=start)
        return tuple(int(x) for x in m.groups())

    def settle(self, want, timeout=10):
        """Ask for the counters until they are exactly `want`."""
        last = []

        def ask():
            last[:] = [self.counters()]
            return last[0] == want
        try:
            wait_until(ask, timeout, "counters %r" % (want,), interval=0.05)
        except AssertionError as e:
            raise AssertionError("counters (active, total, refused, failed) "
                                 "stayed %r, want %r (%s)\n%s"
                                 % (last, want, e, self.log()[-4000:]))


def most_in_a_second(times):
    """The largest number of events inside any one-second window."""
    return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)


def port_of(addr):
    return parse_addr(addr)[1][1]


def live_children(pid):
    return [p for p, st in proc_children(pid) if st not in ("Z", "X")]


def soft_hard_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for ln in f:
            if ln.startswith("Max open files"):
                soft, hard = ln.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def with_nofile(soft, hard):
    def pre():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return pre


def first_byte(sock, timeout):
    """b'x' when served, b'' when acceptd closed it (EOF or reset), None
    when nothing came within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1)
    except (ConnectionResetError, BrokenPipeError):
        return b""
    except socket.timeout:
        return None


# --- out of processes: RLIMIT_NPROC ------------------------------------------

def uid_tasks(uid):
    """Tasks (threads) whose real uid is uid - what RLIMIT_NPROC counts -
    as far as this pid namespace shows them."""
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                real = next(int(ln.split()[1]) for ln in f if ln.startswith("Uid:"))
            if real == uid:
                n += len(os.listdir("/proc/%s/task" % name))
        except (OSError, StopIteration, ValueError):
            pass
    return n


def mapped(idmap, ident):
    with open(idmap) as f:
        for ln in f:
            inside, _outside, count = (int(x) for x in ln.split())
            if inside <= ident < inside + count:
                return True
    return False


def spare_uid():
    """A uid that no account has and no visible process runs as, so that
    RLIMIT_NPROC counts only what this test starts (nobody may be shared
    with other daemons, even ones in other containers this /proc hides)."""
    for uid in range(64990, 64900, -1):
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        if (mapped("/proc/self/uid_map", uid) and mapped("/proc/self/gid_map", uid)
                and uid_tasks(uid) == 0):
            return uid
    return None


def cap_bits():
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith("CapEff:"):
                return int(ln.split()[1], 16)
    return 0


def runnable_by_others(path):
    """Can a uid with no group in common run path?  Every directory on the
    way needs o+x, the file o+rx."""
    path = os.path.realpath(path)
    if os.stat(path).st_mode & (stat.S_IXOTH | stat.S_IROTH) != (stat.S_IXOTH | stat.S_IROTH):
        return False
    d = os.path.dirname(path)
    while True:
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return False
        if d == "/":
            return True
        d = os.path.dirname(d)


@case
def fork_failure_storm_closes_logs_and_recovers():
    """As an unprivileged user whose RLIMIT_NPROC leaves room for H
    handlers: H clients are held, the rest are each closed without a
    handler, logged at a bounded rate, with no busy loop; once the H end,
    clients are served again by the same acceptd."""
    H, E = 3, 30
    CAP_SYS_ADMIN, CAP_SYS_RESOURCE = 21, 24
    binary = ACCEPTD
    if os.geteuid() == 0:
        uid = spare_uid()
        if uid is None:
            raise Skip("no spare uid mapped in this user namespace")
        if not runnable_by_others(binary):
            t = tmpdir()
            os.chmod(t, 0o755)
            binary = shutil.copy(ACCEPTD, os.path.join(t, "acceptd"))
            os.chmod(binary, 0o755)
    else:
        if cap_bits() & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE):
            raise Skip("not root, yet CAP_SYS_ADMIN/CAP_SYS_RESOURCE make "
                       "RLIMIT_NPROC ineffective")
        uid = os.getuid()
    # Not root: every process of ours counts, and so will the log reader
    # thread the Daemon starts.
    base = uid_tasks(uid) + (os.geteuid() != 0)
    # acceptd itself, plus H handlers (the start-up wrapper's one stat
    # child is gone before any handler starts).
    limit = base + 1 + H

    def drop():
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        # After setuid: a limit already exceeded at setuid time would make
        # the kernel refuse the execve.
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))

    try:
        d = LevelDaemon(["-v", "-l", "127.0.0.1:0", "--"] + HOLD, binary=binary,
                        preexec_fn=drop)
    except (subprocess.SubprocessError, PermissionError) as e:
        raise Skip("cannot start acceptd as uid %d: %s" % (uid, e))
    addr, = d.listening()
    # 1. Exactly H handlers can exist: each holder is served.
    holders = [connect(addr) for _ in range(H)]
    got = [first_byte(c, 10) for c in holders]
    assert got == [b"x"] * H, (got, d.log())
    # 2. E more clients: each must end, served or closed, none may hang.
    extras = [connect(addr) for _ in range(E)]
    d.wait_line(r"^<3>127\.0\.0\.1:\d+: cannot start handler: "
                r"Resource temporarily unavailable; connection closed$")
    t0, c0 = time.monotonic(), cpu_ticks(d.pid)
    time.sleep(2.0)     # a measuring window over the storm, not a wait
    dt, dc = time.monotonic() - t0, cpu_ticks(d.pid) - c0
    tick = os.sysconf("SC_CLK_TCK")
    assert dc / tick / dt < 0.05, \
        "acceptd used %.0f%% CPU during the fork-failure storm" % (100 * dc / tick / dt)
    # ...and it was a storm all along: paced by the 100 ms pause, some of
    # the E were still waiting when the window closed.
    assert d.counters()[3] < E, "all %d failed within 2 s: no pause?\n%s" % (E, d.log())
    got = [first_byte(c, 10) for c in extras]
    assert None not in got, "clients neither served nor closed: %r\n%s" % (got, d.log())
    served = got.count(b"x")
    closed = got.count(b"")
    kids = live_children(d.pid)
    assert len(kids) == H + served, (kids, H, served)
    # As root the uid is ours alone; otherwise other processes of ours may
    # have come or gone since the limit was set.
    if os.geteuid() == 0 or uid_tasks(uid) == base + H + served:
        assert served == 0, "%d handlers beyond RLIMIT_NPROC" % served
    assert d.counters() == (H + served, H + served, 0, closed), d.log()
    # 3. The log: every closed connection is counted, but the lines come
    # at a bounded rate (5 a second and a summary, not one per failure).
    fails = d.stamped(r"^<3>.*cannot start handler: Resource temporarily unavailable")
    pauses = d.stamped(r"^<4>handler start failed: Resource temporarily "
                       r"unavailable; pausing accept for 100 ms$")
    assert fails and pauses, d.log()
    assert most_in_a_second(fails) <= 6, \
        "%d 'cannot start handler' lines within one second:\n%s" % (
            most_in_a_second(fails), d.log())
    assert most_in_a_second(pauses) <= 2, d.log()
    assert re.search(r"^<5>\d+ more connections that could not be handed on "
                     r"not logged", d.log(), re.M), d.log()
    for c in extras:
        c.close()
    # 4. The held connections end: the same acceptd serves again, at once.
    t1 = time.monotonic()
    for c in holders:
        c.close()
    wait_until(lambda: not live_children(d.pid), 2, "the held handlers to be reaped")
    c = connect(addr)
    assert first_byte(c, 1.0) == b"x", "not served after the storm:\n" + d.log()
    took = time.monotonic() - t1
    assert took < 1.0, "served again %.2f s after the handlers ended" % took
    c.close()
    wait_until(lambda: not live_children(d.pid), 2, "that handler to be reaped")
    # And the full capacity is back (nothing of RLIMIT_NPROC leaked).
    again = [connect(addr) for _ in range(H)]
    assert [first_byte(c, 5) for c in again] == [b"x"] * H, d.log()
    for c in again:
        c.close()
    assert d.proc.poll() is None
    assert d.stop() == 0, d.log()


# --- RLIMIT_NOFILE at start --------------------------------------------------

@case
def nofile_soft_limit_raised_for_max_conns():
    d = LevelDaemon(["-v", "-b", "echo", "-w", "1", "-c", "5000", "-l", "127.0.0.1:0"],
                    preexec_fn=with_nofile(256, 8192))
    addr, = d.listening()
    soft, hard = soft_hard_nofile(d.pid)
    assert hard == 8192, hard
    assert 5000 < soft <= 5000 + 64, "soft RLIMIT_NOFILE %d for -c 5000" % soft
    assert re.search(r"^<6>raised the soft RLIMIT_NOFILE from 256 to %d for "
                     r"--max-conns 5000$" % soft, d.log(), re.M), d.log()
    assert not d.at_most(4), d.log()
    assert exchange(addr, b"fits") == b"fits"
    assert d.stop() == 0


@case
def nofile_hard_limit_lowers_max_conns_without_refusing():
    d = LevelDaemon(["-b", "echo", "-w", "1", "-c", "5000", "-l", "127.0.0.1:0"],
                    preexec_fn=with_nofile(256, 256))
    addr, = d.listening()
    m = d.wait_line(r"^<4>--max-conns 5000 needs (\d+) fds but RLIMIT_NOFILE allows "
                    r"256; serving at most (\d+) connections at once$")
    need, M = int(m.group(1)), int(m.group(2))
    assert 5000 < need <= 5000 + 64 and 256 - 64 <= M < 256, (need, M)
    assert need - 5000 == 256 - M, "reserve differs: need %d, M %d" % (need, M)
    assert soft_hard_nofile(d.pid) == (256, 256), soft_hard_nofile(d.pid)
    socks = [connect(addr) for _ in range(M + 5)]
    sel = selectors.DefaultSelector()
    for i, c in enumerate(socks):
        c.sendall(b"%d;" % i)
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, i)
    replies = {}

    def collect(timeout):
        for key, _ in sel.select(timeout):
            i = key.data
            try:
                b = key.fileobj.recv(64)
            except (BlockingIOError, InterruptedError):
                continue
            assert b, "connection %d closed, not served: refused?\n%s" % (i, d.log())
            replies[i] = replies.get(i, b"") + b
            if replies[i] == b"%d;" % i:
                sel.unregister(key.fileobj)
        return len(replies)

    wait_until(lambda: collect(0.05) >= M, 10, "%d echo replies" % M, interval=0)
    # A bounded look at an absence: nobody beyond M is served.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        collect(deadline - time.monotonic())
    assert len(replies) == M, "%d of %d connections served with -c lowered to %d" % (
        len(replies), M + 5, M)
    assert all(replies[i] == b"%d;" % i for i in replies), replies
    waiting = sorted(set(range(M + 5)) - set(replies))
    # Five served ones end: the five waiting are served, not refused.
    done = sorted(replies)[:5]
    for i in done:
        socks[i].close()
    wait_until(lambda: collect(0.05) >= M + 5, 5,
               "the 5 connections beyond M to be served", interval=0)
    assert all(replies[i] == b"%d;" % i for i in waiting), replies
    for i, c in enumerate(socks):
        if i not in done:
            c.close()
    d.settle((0, M + 5, 0, 0))
    assert not d.at_most(3), d.log()
    assert d.stop() == 0


@case
def nofile_not_raised_in_spawn_mode():
    """Spawn mode keeps no fd per connection: nothing is raised, -c stays,
    and more handlers than RLIMIT_NOFILE run at once.  With
    --proxy-protocol the master holds each fd while reading: raised."""
    n = 280             # more than 256 at once; each handler holds one
    d = LevelDaemon(["-v", "-c", "5000", "-l", "127.0.0.1:0", "--", "/bin/cat"],
                    preexec_fn=with_nofile(256, 8192))
    addr, = d.listening()
    assert soft_hard_nofile(d.pid) == (256, 8192), (soft_hard_nofile(d.pid), d.log())
    socks = [connect(addr) for _ in range(n)]
    try:
        wait_until(lambda: len(live_children(d.pid)) == n, 30, "%d handlers at once" % n)
    except AssertionError:
        raise AssertionError("%d of %d handlers running at once\n%s"
                             % (len(live_children(d.pid)), n, d.log()))
    assert soft_hard_nofile(d.pid) == (256, 8192), soft_hard_nofile(d.pid)
    assert exchange(addr, b"one more") == b"one more"
    for c in socks:
        c.close()
    wait_until(lambda: not live_children(d.pid), 10, "the handlers to end")
    assert not re.search(r"RLIMIT_NOFILE", d.log()), d.log()
    assert not d.at_most(4), d.log()
    assert d.stop() == 0
    p = LevelDaemon(["-v", "--proxy-protocol", "--proxy-from", "127.0.0.1", "-c", "5000",
                     "-l", "127.0.0.1:0", "--"] + HOLD, preexec_fn=with_nofile(256, 8192))
    p.listening()
    soft, _ = soft_hard_nofile(p.pid)
    assert 5000 < soft <= 8192, soft
    p.wait_line(r"^<6>raised the soft RLIMIT_NOFILE from 256 to %d " % soft)
    assert p.stop() == 0


# --- peers that reset at once -------------------------------------------------
# limits.py resets_at_once_leave_it_serving covers 200 resets in pool mode
# without PROXY; these add spawn mode and --proxy-protocol (the reset comes
# while acceptd waits for the header), error lines and zombies.

def reset_storm(args, n=1000, proxy=False, pool_workers=0, echo=True):
    """n clients connect and reset at once; then a normal client is served
    at once, the counters settle, no zombie and no warning or error line.
    echo=False: the handler is /bin/true (one exec, nothing on stderr when
    its connection was reset), so "served" is read from its end line."""
    d = LevelDaemon(["-v", "-l", "127.0.0.1:0"] + args)
    addr, = d.listening()
    workers = sorted(int(d.wait_line(r"^<6>worker %d pid (\d+) ready" % i).group(1))
                     for i in range(pool_workers))
    sa = parse_addr(addr)[1]
    linger = struct.pack("ii", 1, 0)

    def resetting(first=b""):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        s.settimeout(5)
        s.connect(sa)
        if first:
            s.sendall(first)
        return s
    # With PROXY, half reset at once (usually before acceptd even accepted
    # them), half while acceptd holds them waiting for the rest of a header.
    at_once = n // 2 if proxy else n
    for _ in range(at_once):
        resetting().close()             # RST
    # Every reset connection was accepted and ended: as a handler that read
    # a reset (spawn, pool) or as a refusal before its header (PROXY).
    d.settle((0, 0, at_once, 0) if proxy else (0, n, 0, 0), timeout=30)
    if proxy:
        # One peer may hold a quarter of -c (default 100) in mid-header.
        base, batch = open_fds(d.pid), 25
        for _ in range((n - at_once) // batch):
            socks = [resetting(b"PROXY TCP4 ") for _ in range(batch)]
            wait_until(lambda: open_fds(d.pid) == base + batch, 5,
                       "acceptd to hold %d connections in mid-header" % batch)
            for s in socks:
                s.close()               # RST, while acceptd waits in epoll
            # Well within the 3 s header timeout, which would close them too.
            wait_until(lambda: open_fds(d.pid) == base, 2,
                       "acceptd to close the %d reset connections" % batch)
        d.settle((0, 0, n, 0))
    t0 = time.monotonic()
    data = b"after the storm"
    with connect(addr, timeout=5) as c:
        port = c.getsockname()[1]
        # (/bin/true reads nothing: unread data would turn its close into a reset.)
        c.sendall((PROXY_V1 if proxy else b"") + (data if echo else b""))
        c.shutdown(socket.SHUT_WR)
        got = read_all(c)
    if echo:
        assert got == data, (got, d.log())
    else:
        assert got == b"", got
        d.wait_line(r"^<6>end 127\.0\.0\.1:%d pid \d+ status 0 after " % port, timeout=1)
    took = time.monotonic() - t0
    assert took < 1.0, "a normal client took %.2f s after the storm" % took
    d.settle((0, 1, n, 0) if proxy else (0, n + 1, 0, 0))
    if pool_workers:
        kids = proc_children(d.pid)
        assert sorted(p for p, _ in kids) == workers, (kids, workers)
        assert all(st != "Z" for _, st in kids), kids
    else:
        wait_until(lambda: not proc_children(d.pid), 5,
                   "no children (live or zombie) of acceptd pid %d" % d.pid)
    assert not d.at_most(4), "\n".join(d.at_most(4)[:20])
    if proxy:
        # Refusals are logged, 5 a second plus a summary, not 1000 lines.
        refusals = d.stamped(r"^<5>127\.0\.0\.1:\d+: .*; closed$")
        assert 1 <= len(refusals) and most_in_a_second(refusals) <= 5, d.log()
    assert d.stop() == 0, d.log()


@case
def resets_in_spawn_mode():
    reset_storm(["--", "/bin/true"], echo=False)


@case
def resets_before_proxy_header_pool():
    reset_storm(["-w", "2", "--proxy-protocol", "--proxy-from", "127.0.0.1",
                 "-b", "echo"], proxy=True, pool_workers=2)


@case
def resets_before_proxy_header_spawn():
    reset_storm(["--proxy-protocol", "--proxy-from", "127.0.0.1", "--",
                 "/bin/sh", "-c", "exec cat 2>/dev/null"],
                proxy=True)


# --- EMFILE while PROXY headers wait -----------------------------------------

@case
def emfile_with_proxy_protocol_pauses_then_recovers():
    d = LevelDaemon(["-v", "--proxy-protocol", "--proxy-from", "127.0.0.1",
                     "-l", "127.0.0.1:0"])
    addr, = d.listening()
    n = open_fds(d.pid)
    soft, hard = resource.prlimit(d.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (n, hard))
    clients = []
    for i in range(5):
        c = socket.create_connection(("127.0.0.1", port_of(addr)), 5)
        c.sendall(PROXY_V1 + b"wait%d" % i)
        clients.append(c)
    d.wait_line(r"^<4>127\.0\.0\.1:\d+: Too many open files; pausing accept for 100 ms$")
    t0, c0, l0 = time.monotonic(), cpu_ticks(d.pid), len(d.lines)
    time.sleep(2.0)     # a measuring window over the storm, not a wait
    dt, dc = time.monotonic() - t0, cpu_ticks(d.pid) - c0
    tick = os.sysconf("SC_CLK_TCK")
    assert dc / tick / dt < 0.05, "acceptd used %.0f%% CPU while paused" % (100 * dc / tick / dt)
    assert len([ln for ln in d.lines[l0:] if "pausing accept" in ln]) <= 3, d.log()
    assert not re.search(r"connection 192\.0\.2\.1", d.log()), \
        "served while out of fds?\n" + d.log()
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (soft, hard))
    t1 = time.monotonic()
    for i, c in enumerate(clients):
        c.shutdown(socket.SHUT_WR)
        c.settimeout(5)
        # Only what followed the header comes back: it was taken off whole.
        assert read_all(c) == b"wait%d" % i, d.log()
        c.close()
    took = time.monotonic() - t1
    assert took < 1.0, "recovery took %.2fs" % took
    # The address in the header is the one acceptd saw.
    assert len(re.findall(r"^<6>connection 192\.0\.2\.1:1111 on ", d.log(), re.M)) == 5, d.log()
    d.settle((0, 5, 0, 0))
    assert not d.at_most(3), d.log()
    assert d.stop() == 0


run()
