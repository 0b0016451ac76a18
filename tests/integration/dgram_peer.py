"""dgram_peer.py - --datagram per-peer (issue #16), busybox udpsvd's model:
each new peer's first datagram starts a PROGRAM whose fds 0 and 1 are a
socket connected to that peer, and acceptd binds a fresh socket in the
listener's place (dgram.c start_peer, listen.c listen_rebind).

  * three peers, each answered by a handler of its own through five
    interleaved rounds: the same pid per peer, three pids, its own
    payload, fd 0 connected to that peer (getpeername), UDPREMOTEPORT;
  * -c 2: a third peer waits while two handlers run, and is served when
    one exits;
  * -C 1 with --source-prefix 24,128: a second port of the same address,
    or another address of the same /24, gets no handler while the first
    one runs (dropped, logged), another /24 does; the source's next
    datagram after the exit does;
  * errors: per-peer with a built-in, --fd-passing, -l unix-dgram: (exit
    2) and an inherited UDP socket, LISTEN_FDS or fd 0 (exit 1), one line;
  * a SIGHUP reload while two handlers run: they keep their sockets and
    answer, and a peer after the reload gets a handler;
  * the listener is never handed out twice: 20 peers one after another,
    20 "peer ... pid" lines, no handler's socket is acceptd's, and when
    they are gone acceptd holds the fds it held at the start and one UDP
    socket on the port; a datagram waiting in a handler's socket does
    not wake acceptd (its old registration left the poll set).

The peers' first datagrams go one at a time, each after the last one's
answer: the kernel does not move datagrams already queued in the socket
that becomes a handler's, so two first datagrams at the same instant
would both reach the first handler (udpsvd's window, acceptd(8)).

The handler (HANDLER, written into a scratch directory) answers every
datagram it reads on fd 0, through fd 1, with "PID REMOTE PEERNAME FROM
NONBLOCK INODE|PAYLOAD" (REMOTE from UDPREMOTEIP/UDPREMOTEPORT, PEERNAME
fd 0's getpeername, FROM the datagram's own source), and exits after
IDLE seconds without one (its first argument); a payload "hold" makes it
wait HOLD seconds before reading on."""
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (ACCEPTD, Daemon, case, counters, fd_count, pid_dead,  # noqa: E402
                          proc_children, run, run_acceptd, sock_inodes, tmpdir,
                          wait_counters, wait_until, write_script)

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
LISTEN_EXEC = os.path.join(HELPERS, "src_listen_exec.py")

HANDLER = r'''
import fcntl, os, select, socket, sys, time

idle = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
hold = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
s = socket.socket(fileno=0)
me = "%s:%s" % s.getpeername()[:2]
remote = "%s:%s" % (os.environ.get("UDPREMOTEIP"), os.environ.get("UDPREMOTEPORT"))
nonblock = int(bool(fcntl.fcntl(0, fcntl.F_GETFL) & os.O_NONBLOCK))
ino = os.fstat(0).st_ino
while select.select([s], [], [], idle)[0]:
    data, src = s.recvfrom(1 << 16)
    head = "%d %s %s %s:%s %d %d|" % (os.getpid(), remote, me, src[0], src[1], nonblock, ino)
    os.write(1, head.encode() + data)
    if data == b"hold":
        time.sleep(hold)
'''

_handler = []


def handler():
    if not _handler:
        _handler.append(write_script(tmpdir(), "peer.py", "#!%s\n%s" % (sys.executable, HANDLER)))
    return _handler[0]


def per_peer(args=(), idle=2.0, hold=1.0, listen="udp:127.0.0.1:0"):
    """acceptd -v --datagram per-peer -l LISTEN ARGS -- handler IDLE HOLD;
    returns it and the (host, port) to send to."""
    d = Daemon(["-v", "--datagram", "per-peer", "-l", listen] + list(args) +
               ["--", handler(), str(idle), str(hold)])
    (name,) = d.listening(1)
    m = re.fullmatch(r"udp:(\S+):(\d+)", name)
    assert m, name
    return d, (m.group(1), int(m.group(2)))


def client(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    return s


class Reply:
    """One handler's answer, parsed."""

    def __init__(self, raw):
        head, self.payload = raw.split(b"|", 1)
        pid, self.remote, self.peer, self.src, nb, ino = head.decode().split()
        self.pid, self.nonblock, self.ino = int(pid), nb == "1", int(ino)

    def check(self, c, payload):
        """It answers c's payload, from a socket connected to c."""
        me = "%s:%d" % c.getsockname()
        assert self.payload == payload, "sent %r, the handler read %r" % (payload, self.payload)
        assert self.peer == me, "handler's fd 0 is connected to %s, not %s" % (self.peer, me)
        assert self.src == me, "handler read a datagram of %s, not %s's" % (self.src, me)
        assert self.remote == me, "UDPREMOTEIP:UDPREMOTEPORT %s, the peer %s" % (self.remote, me)
        assert not self.nonblock, "handler's fd 0 is O_NONBLOCK"
        return self


def recv_reply(c, timeout=10):
    c.settimeout(timeout)
    try:
        data, src = c.recvfrom(1 << 16)
    except socket.timeout:
        raise AssertionError("%s:%d got no answer within %ss" % (c.getsockname() + (timeout,)))
    return Reply(data), src


def ask(c, to, payload, timeout=10):
    c.sendto(payload, to)
    r, src = recv_reply(c, timeout)
    assert src == to, "answered from %r, sent to %r" % (src, to)
    return r.check(c, payload)


def nothing_for(c):
    c.setblocking(False)
    try:
        data = c.recv(1 << 16)
    except BlockingIOError:
        return True
    finally:
        c.setblocking(True)
    raise AssertionError("%s:%d got %r" % (c.getsockname() + (data,)))


def barrier(d):
    """Two counter lines: what was sent before was dispatched by then."""
    counters(d)
    return counters(d)


def peer_lines(d, start=0):
    """[(peer, pid)] of the "peer ADDR on LISTENER pid N" lines."""
    return [(m.group(1), int(m.group(2))) for m in
            (re.search(r"peer (\S+) on \S+ pid (\d+)$", ln) for ln in d.lines[start:]) if m]


def handlers_of(d):
    return sorted(pid for pid, st in proc_children(d.pid) if st not in ("Z", "X"))


def udp_sockets_on(port, inodes):
    """How many of inodes are UDP sockets bound to port (/proc/net/udp*)."""
    n = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            col = row.split()
            if int(col[1].rsplit(":", 1)[1], 16) == port and int(col[9]) in inodes:
                n += 1
    return n


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- 1. each peer its own handler ---------------------------------------------

@case
def three_peers_each_have_their_own_handler():
    d, to = per_peer()
    peers = [client("127.0.0.%d" % i) for i in (2, 3, 4)]
    try:
        pids = {}
        # First datagrams one at a time (see the header).
        for c in peers:
            r = ask(c, to, b"hello from %s" % c.getsockname()[0].encode())
            pids[c] = r.pid
        assert len(set(pids.values())) == 3, "handlers %r, want three" % pids
        for rnd in range(5):
            for c in peers:
                c.sendto(b"round %d of %d" % (rnd, c.getsockname()[1]), to)
            for c in peers:
                r, src = recv_reply(c)
                assert src == to, src
                r.check(c, b"round %d of %d" % (rnd, c.getsockname()[1]))
                assert r.pid == pids[c], "round %d of %s answered by pid %d, its handler is %d" % (
                    rnd, c.getsockname(), r.pid, pids[c])
            for c in peers:
                assert nothing_for(c)   # one answer per datagram, no copies
        got = peer_lines(d)
        want = [("%s:%d" % c.getsockname(), pids[c]) for c in peers]
        assert got == want, "log says %r, want %r" % (got, want)
        assert sorted(pids.values()) == handlers_of(d), (pids, handlers_of(d))
    finally:
        for c in peers:
            c.close()


# --- 2. -c --------------------------------------------------------------------

@case
def max_conns_makes_a_third_peer_wait_for_a_handler_to_exit():
    d, to = per_peer(["-c", "2"], idle=1.0)
    a, b, c = client("127.0.0.2"), client("127.0.0.3"), client("127.0.0.4")
    with a, b, c:
        ra = ask(a, to, b"a")
        rb = ask(b, to, b"b")
        c.sendto(b"c waits", to)
        # Both handlers still run (each answered just now, idle 1 s):
        # the third datagram waits in the listener's queue.
        for i in range(3):
            assert ask(a, to, b"a %d" % i).pid == ra.pid
            assert ask(b, to, b"b %d" % i).pid == rb.pid
            n = barrier(d)
            assert n["active"] == 2 and n["total"] == 2, n
            assert not pid_dead(ra.pid) and not pid_dead(rb.pid)
            assert nothing_for(c)
        # Now a and b fall silent: their handlers exit after 1 s, and c's
        # datagram, still queued, starts the third.
        rc, src = recv_reply(c, timeout=10)
        rc.check(c, b"c waits")
        assert rc.pid not in (ra.pid, rb.pid), rc.pid
        assert pid_dead(ra.pid) or pid_dead(rb.pid), "c served while both handlers ran"
    log = d.lines[:]
    started = next(i for i, ln in enumerate(log) if re.search(r"peer 127\.0\.0\.4:\d+ on .* pid %d"
                                                               % rc.pid, ln))
    ended = [i for i, ln in enumerate(log)
             if re.search(r"end 127\.0\.0\.[23]:\d+ pid (%d|%d) " % (ra.pid, rb.pid), ln)]
    assert ended and ended[0] < started, "c's handler started before one ended:\n" + d.log()


# --- 3. -C with --source-prefix ----------------------------------------------------

@case
def max_per_source_counts_ports_and_prefixes():
    d, to = per_peer(["-C", "1", "--source-prefix", "24,128"], idle=1.0)
    first, second_port = client("127.0.0.2"), client("127.0.0.2")
    same_net, other_net = client("127.0.0.3"), client("127.0.1.2")
    with first, second_port, same_net, other_net:
        r1 = ask(first, to, b"first")
        second_port.sendto(b"same address, another port", to)
        same_net.sendto(b"same /24", to)
        # Queued behind them: served, so they were looked at (and dropped).
        ro = ask(other_net, to, b"another /24")
        assert ro.pid != r1.pid
        d.wait_line(r"127\.0\.0\.2:%d: source already holds --max-per-source 1; datagram dropped"
                    % second_port.getsockname()[1])
        assert nothing_for(second_port) and nothing_for(same_net)
        assert counters(d)["refused"] == 2, d.log()
        assert [p for _, p in peer_lines(d)] == [r1.pid, ro.pid], d.log()
        # The datagram was dropped, not kept: after the first handler's
        # exit, the source's next one starts a handler.
        d.wait_line(r"end 127\.0\.0\.2:%d pid %d " % (first.getsockname()[1], r1.pid))
        r2 = ask(second_port, to, b"my turn now")
        assert r2.pid not in (r1.pid, ro.pid), r2.pid


# --- 4. what per-peer cannot do ---------------------------------------------------

def one_line(lines, pattern):
    assert len(lines) == 1, "want one line, got %r" % lines
    assert re.search(pattern, lines[0]), lines[0]


@case
def per_peer_errors():
    rc, _, err = run_acceptd(["-b", "echo", "--datagram", "per-peer", "-l", "udp:127.0.0.1:0"])
    assert rc == 2, (rc, err)
    one_line(err, r"--datagram per-peer: starts a PROGRAM per peer; a built-in answers")
    rc, _, err = run_acceptd(["--fd-passing", "--datagram", "per-peer", "-l", "udp:127.0.0.1:0",
                              "--", handler()])
    assert rc == 2, (rc, err)
    one_line(err, r"--datagram per-peer: .*--fd-passing")
    path = os.path.join(tmpdir(), "u.sock")
    rc, _, err = run_acceptd(["--datagram", "per-peer", "-l", "unix-dgram:" + path,
                              "--", handler()])
    assert rc == 2, (rc, err)
    one_line(err, r"--listen 'unix-dgram:%s': --datagram per-peer" % re.escape(path))
    assert not os.path.exists(path), "a usage error bound %s" % path
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        # From a service manager (LISTEN_FDS, fd 3)...
        rc, _, err = run_acceptd(["--datagram", "per-peer", "--", handler()],
                                 argv0=[sys.executable, LISTEN_EXEC, str(u.fileno()), "--",
                                        ACCEPTD], pass_fds=(u.fileno(),))
        assert rc == 1, (rc, err)
        one_line(err, r"fd 3( \(unknown\))?: --datagram per-peer binds a new socket for each "
                      r"peer, which it can do only for sockets it binds itself")
        # ...and from inetd (fd 0).
        rc, _, err = run_acceptd(["--datagram", "per-peer", "--", handler()], stdin=u)
        assert rc == 1, (rc, err)
        one_line(err, r"fd 0: --datagram per-peer binds a new socket")


# --- 5. reload ------------------------------------------------------------------

@case
def reload_keeps_the_peers_handlers_and_serves_new_peers():
    d, to = per_peer(idle=3.0)
    a, b, c = client("127.0.0.2"), client("127.0.0.3"), client("127.0.0.4")
    with a, b, c:
        ra, rb = ask(a, to, b"a before"), ask(b, to, b"b before")
        mark = len(d.lines)
        d.signal(signal.SIGHUP)
        d.wait_line(r"reload: done", start=mark)
        # Their sockets are theirs: the exec did not touch them.
        assert ask(a, to, b"a after").pid == ra.pid
        assert ask(b, to, b"b after").pid == rb.pid
        rc = ask(c, to, b"c after the reload")
        assert rc.pid not in (ra.pid, rb.pid), rc.pid
        assert peer_lines(d, mark) == [("%s:%d" % c.getsockname(), rc.pid)], d.log()
        assert counters(d)["active"] == 3, d.log()
        # The new image reaps the old image's handlers.
        for c_, r in ((a, ra), (b, rb)):
            d.wait_line(r"end %s:%d pid %d status 0" % (c_.getsockname() + (r.pid,)),
                        start=mark)
    wait_counters(d, active=0)
    assert d.proc.poll() is None and d.stop() == 0, d.log()


# --- 6. the listener is never handed out twice -----------------------------------------

@case
def twenty_peers_one_after_another_leave_no_fd_behind():
    d, to = per_peer(idle=0.3)
    fds0 = fd_count(d.pid)
    socks0 = sock_inodes(d.pid)
    assert udp_sockets_on(to[1], socks0) == 1, socks0
    pids, inos = [], []
    for i in range(20):
        with client("127.0.%d.%d" % (1 + i // 10, 2 + i % 10)) as c:
            r = ask(c, to, b"peer %d" % i)
            # The handler's socket left acceptd: it is not one of its fds.
            assert r.ino not in sock_inodes(d.pid), \
                "peer %d's handler has a socket acceptd still holds" % i
            pids.append(r.pid)
            inos.append(r.ino)
    assert len(set(pids)) == 20, pids
    assert len(set(inos)) == 20, "sockets handed out twice: %r" % inos
    lines = peer_lines(d)
    assert [p for _, p in lines] == pids, "peer lines %r, handlers %r" % (lines, pids)
    wait_counters(d, active=0, total=20)
    wait_until(lambda: not handlers_of(d), 10, "the handlers to exit")
    assert fd_count(d.pid) == fds0, "acceptd had %d fds, now %d: %r" % (
        fds0, fd_count(d.pid), sorted(os.listdir("/proc/%d/fd" % d.pid)))
    socks = sock_inodes(d.pid)
    assert udp_sockets_on(to[1], socks) == 1, "UDP sockets on the port: %d" % udp_sockets_on(
        to[1], socks)
    # Still serving, with a fresh handler.
    with client("127.0.9.9") as c:
        assert ask(c, to, b"one more").pid not in pids


@case
def a_datagram_waiting_for_its_handler_does_not_wake_acceptd():
    # The handler holds its socket's next datagram unread for 1.5 s.  Had
    # the handed-out socket stayed in acceptd's poll set, acceptd would
    # spin on it meanwhile.
    d, to = per_peer(idle=3.0, hold=1.5)
    with client("127.0.0.2") as a, client("127.0.0.3") as b:
        ra = ask(a, to, b"hold")
        cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
        a.sendto(b"waits in the handler's socket", to)
        r, _ = recv_reply(a)
        r.check(a, b"waits in the handler's socket")
        spent, took = cpu_seconds(d.pid) - cpu0, time.monotonic() - t0
        assert r.pid == ra.pid and took >= 1.0, (r.pid, ra.pid, took)
        assert spent < 0.3, "acceptd used %.2fs of CPU in %.2fs while the handler held " \
            "its datagram" % (spent, took)
        # And the listener is polled: another peer is served.
        assert ask(b, to, b"next").pid != ra.pid


run()
