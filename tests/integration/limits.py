"""limits.py - -c/--max-conns back-pressure, reaping (no zombies after
many connections), clients that reset at once, and the SIGTERM drain:
waiting for running connections, then SIGTERM and SIGKILL to each
handler's whole process group, and a second (third) SIGTERM or SIGINT
skipping to the next of those steps at once."""
import os
import re
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (Daemon, case, connect, exchange, parse_addr,  # noqa: E402
                          pid_dead, proc_children, proc_stat, read_all, run,
                          wait_until)

# Writes one byte (so the client knows it runs), then holds the connection
# until the client closes it.
HOLD = ["/bin/sh", "-c", "printf x; exec cat >/dev/null"]


def port_of(addr):
    return parse_addr(addr)[1][1]


def live_children(pid):
    return [p for p, state in proc_children(pid) if state not in ("Z", "X")]


def no_children(pid):
    return not proc_children(pid)


def counters(d, total):
    """Ask for the counters line (SIGUSR1) until it shows active 0 and the
    expected total; returns the line."""
    def ask():
        start = len(d.lines)
        d.signal(signal.SIGUSR1)
        m = d.wait_line(r"active \d+ total \d+ refused \d+ failed \d+$", start=start)
        line = m.string
        return line if re.search(r"active 0 total %d " % total, line) else None
    return wait_until(ask, 10, "counters with active 0 total %d" % total, interval=0.05)


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def refused(host, port):
    with socket.socket() as s:
        s.settimeout(5)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return True
    return False


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime


@case
def max_conns_waits_in_backlog():
    d = Daemon(["-v", "-c", "2", "-l", "127.0.0.1:0", "--"] + HOLD)
    addr, = d.listening()
    c1, c2 = connect(addr), connect(addr)
    assert c1.recv(1) == b"x" and c2.recv(1) == b"x"
    # The third connect succeeds in the kernel backlog, but no handler runs.
    c3 = connect(addr)
    c3.settimeout(0.5)
    try:
        got = c3.recv(1)
    except socket.timeout:
        got = None
    assert got is None, "third connection served beyond -c 2 (got %r)" % got
    assert len(live_children(d.pid)) == 2, proc_children(d.pid)
    assert len(re.findall(r"connection ", d.log())) == 2, d.log()
    # One ends: the waiting connection gets its handler, it was not refused.
    c1.close()
    c3.settimeout(10)
    assert c3.recv(1) == b"x"
    c4 = connect(addr)              # and the limit holds again
    c4.settimeout(0.5)
    try:
        got = c4.recv(1)
    except socket.timeout:
        got = None
    assert got is None, "fourth connection served beyond -c 2"
    c2.close()
    c4.settimeout(10)
    assert c4.recv(1) == b"x"
    c3.close()
    c4.close()
    assert d.stop() == 0


def many_connections(d, addr, sequential, concurrent, payload, workers=None):
    """workers: the pool's pids, which must be exactly acceptd's children
    before and after; None for spawn mode, where none may be left."""
    for i in range(sequential):
        with connect(addr) as c:
            if payload:
                c.sendall(b"%d" % i)
            c.shutdown(socket.SHUT_WR)
            assert read_all(c) == (b"%d" % i if payload else b""), i
    socks = [connect(addr) for _ in range(concurrent)]
    for i, c in enumerate(socks):
        if payload:
            c.sendall(b"c%d" % i)
        c.shutdown(socket.SHUT_WR)
    for i, c in enumerate(socks):
        assert read_all(c) == (b"c%d" % i if payload else b""), i
        c.close()
    if workers is None:
        wait_until(lambda: no_children(d.pid), 10,
                   "acceptd (pid %d) to have no children left" % d.pid)
    counters(d, sequential + concurrent)
    if workers is not None:
        kids = proc_children(d.pid)
        assert sorted(k for k, _ in kids) == sorted(workers), (kids, workers)
        assert all(state != "Z" for _, state in kids), kids
    if payload:
        assert exchange(addr, b"still fine") == b"still fine"
    else:
        assert exchange(addr) == b""


@case
def no_zombies_program():
    d = Daemon(["-l", "127.0.0.1:0", "--", "/bin/true"])
    addr, = d.listening()
    many_connections(d, addr, 300, 50, payload=False)
    assert d.stop() == 0


@case
def pool_serves_with_n_plus_1_processes():
    """Built-ins run in the pool: hundreds of connections, and the only
    processes are the master and its N workers, the same ones throughout."""
    d = Daemon(["-v", "-w", "3", "-b", "echo", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    pids = [int(d.wait_line(r"worker %d pid (\d+) ready" % i).group(1)) for i in range(3)]
    assert sorted(k for k, _ in proc_children(d.pid)) == sorted(pids)
    many_connections(d, addr, 300, 50, payload=True, workers=pids)
    assert d.stop() == 0
    assert all(pid_dead(p) for p in pids)


@case
def resets_at_once_leave_it_serving():
    d = Daemon(["-b", "echo", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    sa = parse_addr(addr)[1]
    for _ in range(200):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.settimeout(5)
        s.connect(sa)
        s.close()                   # RST, before acceptd even accepted it
    assert exchange(addr, b"after the storm") == b"after the storm"
    counters(d, 201)    # every reset connection was accepted and ended
    # Not spinning: idle, it burns (next to) no CPU.
    before = cpu_ticks(d.pid)
    time.sleep(0.5)                 # a measuring window, not synchronisation
    used = cpu_ticks(d.pid) - before
    assert used <= 10, "acceptd used %d ticks of CPU in 0.5 s idle" % used
    assert proc_stat(d.pid)[0] in ("S", "I"), proc_stat(d.pid)
    assert exchange(addr, b"and again") == b"and again"
    assert d.stop() == 0


@case
def sigterm_drains_running_connection():
    d = Daemon(["-l", "127.0.0.1:0", "--", "/bin/cat"])
    addr, = d.listening()
    port = port_of(addr)
    c = connect(addr)
    c.sendall(b"ping")
    assert c.recv(16) == b"ping"
    d.signal(signal.SIGTERM)
    d.wait_line(r"SIGTERM: stopping; 1 connection\(s\) open")
    # New connects are refused (the line is logged just before the close)...
    wait_until(lambda: refused("127.0.0.1", port), 5,
               "connects to port %d to be refused during the drain" % port)
    # ...while the running one is still served and acceptd waits for it.
    c.sendall(b"more")
    assert c.recv(16) == b"more"
    assert d.proc.poll() is None, "acceptd exited with a connection still open"
    t0 = time.monotonic()
    c.close()
    assert d.wait(5) == 0, d.log()
    assert time.monotonic() - t0 < 5
    assert "drain time over" not in d.log(), d.log()
    assert re.search(r"stopped: active 0 total 1 ", d.log()), d.log()


@case
def drain_timeout_terminates_process_group():
    d = Daemon(["-v", "--drain", "1", "-l", "127.0.0.1:0", "--",
                "/bin/sh", "-c", "sleep 1000 & echo $!; wait"])
    addr, = d.listening()
    c = connect(addr)
    line = b""
    while not line.endswith(b"\n"):
        b = c.recv(64)
        assert b, "handler closed before telling its child's pid"
        line += b
    sleeper = int(line)
    try:
        # $! is known before the child has exec'd sleep: wait for that.
        wait_until(lambda: comm(sleeper) == "sleep", 5, "pid %d to run sleep" % sleeper)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        d.wait_line(r"drain time over: sending SIGTERM to 1 handler", timeout=5)
        # The process itself (d.wait would also wait for EOF on its stderr,
        # which a surviving grandchild would still hold).
        rc = d.proc.wait(8)
        took = time.monotonic() - t0
        assert rc == 0, (rc, d.log())
        assert 0.9 <= took < 5, "exit %.2f s after SIGTERM with --drain 1" % took
        d.wait_line(r"end 127\.0\.0\.1:\d+ pid \d+ killed by signal %d" % signal.SIGTERM)
        # The shell's child went with it: the whole group got SIGTERM.
        wait_until(lambda: pid_dead(sleeper), 5, "the handler's child sleep to die")
        assert d.wait(5) == 0
        c.settimeout(5)
        assert read_all(c) == b""
    finally:
        c.close()
        if not pid_dead(sleeper):
            os.kill(sleeper, signal.SIGKILL)


@case
def drain_escalates_to_sigkill():
    d = Daemon(["-v", "--drain", "0", "-l", "127.0.0.1:0", "--",
                "/bin/sh", "-c", "trap '' TERM; echo $$; exec sleep 1000"])
    addr, = d.listening()
    c = connect(addr)
    line = b""
    while not line.endswith(b"\n"):
        b = c.recv(64)
        assert b, "handler closed early"
        line += b
    handler = int(line)
    try:
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        d.wait_line(r"drain time over: sending SIGTERM to 1 handler")
        d.wait_line(r"sending SIGKILL to 1 handler", timeout=10)
        rc = d.proc.wait(5)
        took = time.monotonic() - t0
        assert rc == 0, (rc, d.log())
        assert 4.5 <= took < 9, "exit %.2f s after SIGTERM (SIGKILL due after 5 s)" % took
        d.wait_line(r"end 127\.0\.0\.1:\d+ pid %d killed by signal 9" % handler)
        assert pid_dead(handler)
    finally:
        c.close()
        if not pid_dead(handler):
            os.kill(handler, signal.SIGKILL)


# Says its pid, writes TERM on each SIGTERM and carries on: only SIGKILL
# ends it.  One process, the leader of its group, no children.
STUBBORN = [sys.executable, "-c",
            "import os, signal\n"
            "signal.signal(signal.SIGTERM, lambda *_: os.write(1, b'TERM\\n'))\n"
            "os.write(1, b'%d\\n' % os.getpid())\n"
            "while True:\n"
            "    signal.pause()\n"]


def signal_again_skips_a_stage(first, second, third):
    """With a 30 s drain, a second stop signal sends the handlers SIGTERM
    at once, and a third their SIGKILL (not 5 s later)."""
    d = Daemon(["-v", "--drain", "30", "-l", "127.0.0.1:0", "--"] + STUBBORN)
    addr, = d.listening()
    c = connect(addr, timeout=5)
    handler = None
    try:
        line = b""
        while not line.endswith(b"\n"):
            b = c.recv(64)
            assert b, "handler closed before telling its pid"
            line += b
        handler = int(line)
        d.signal(first)
        d.wait_line(r"SIG%s: stopping; 1 connection\(s\) open, draining up to 30 s"
                    % first.name[3:])
        # Still draining: a counters line asked for after the first signal
        # comes after anything that signal did at once.
        mark = len(d.lines)
        d.signal(signal.SIGUSR1)
        d.wait_line(r"active 1 total 1 ", start=mark)
        assert "drain time over" not in d.log(), d.log()
        t0 = time.monotonic()
        d.signal(second)
        d.wait_line(r"drain time over: sending SIGTERM to 1 handler", timeout=3)
        assert c.recv(16) == b"TERM\n", "the handler got no SIGTERM"
        assert time.monotonic() - t0 < 3, "SIGTERM %.2f s after the second signal" % (
            time.monotonic() - t0)
        assert not pid_dead(handler), "the TERM-ignoring handler died of SIGTERM"
        t0 = time.monotonic()
        d.signal(third)
        d.wait_line(r"sending SIGKILL to 1 handler", timeout=3)
        rc = d.proc.wait(3)
        took = time.monotonic() - t0
        assert rc == 0, (rc, d.log())
        assert took < 3, "exit %.2f s after the third signal (SIGKILL due at once)" % took
        d.wait_line(r"end 127\.0\.0\.1:\d+ pid %d killed by signal 9" % handler)
        c.settimeout(5)
        assert read_all(c) == b""
    finally:
        c.close()
        if handler and not pid_dead(handler):
            os.kill(handler, signal.SIGKILL)


@case
def second_sigterm_skips_the_drain_third_the_grace():
    signal_again_skips_a_stage(signal.SIGTERM, signal.SIGTERM, signal.SIGTERM)


@case
def second_sigint_skips_the_drain_third_the_grace():
    signal_again_skips_a_stage(signal.SIGINT, signal.SIGINT, signal.SIGINT)


run()
