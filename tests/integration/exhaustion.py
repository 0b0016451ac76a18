"""exhaustion.py - acceptd out of file descriptors: accept pauses on a
timer instead of spinning on a readable listener, logs at most one line a
second, and serves again by itself once fds come back."""
import os
import re
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import Daemon, case, exchange, run  # noqa: E402


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


run()
