"""soak.py (make check-long) - 60 seconds at a steady rate, one client in
ten resetting, against two acceptds at once: one in pool mode (built-in
echo, two workers), one in spawn mode (a cat per connection).  The
well-behaved clients must all get their echo back; the resetting ones
reset right after connecting (often before acceptd accepted them) or in
mid-conversation, after the first bytes came back.  Each master's RSS is
sampled every 2 s: the last sample may not exceed the one taken 10 s in
by more than 256 KiB (see tests/long/sequential.py for why that much; the
first 10 s are the warm-up), and fds and children are what they were
before the load.

ACCEPTD_SOAK_SECS (default 60) and ACCEPTD_SOAK_RATE (connections a
second to each acceptd, default 100) change the load."""
import os
import re
import socket
import sys
import threading
import time

os.environ.setdefault("ACCEPTD_CASE_TIMEOUT", "300")
sys.path.insert(0, os.environ.get("ACCEPTD_TESTLIB") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from acceptd_test import (Daemon, case, fd_count, parse_addr,  # noqa: E402
                          proc_children, read_all, reset_client, run, sanitized,
                          vm_rss_kb, wait_counters, wait_until)

SECS = float(os.environ.get("ACCEPTD_SOAK_SECS", "60"))
RATE = float(os.environ.get("ACCEPTD_SOAK_RATE", "100"))
THREADS = 4                   # client threads per acceptd
WARM = 10.0                   # the early RSS sample, seconds in
SAMPLE = 2.0
RSS_TOLERANCE_KB = 256


class Load:
    """THREADS threads, each starting a connection every THREADS/RATE s
    on a fixed schedule (late ones are not made up for in a burst, so the
    rate stays steady when the machine is slow).  Connection i of a
    thread resets when i % 10 == 9, alternately at once and mid-way."""

    def __init__(self, port, until):
        self.port, self.until = port, until
        self.ok = self.resets = 0
        self.bad = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(k,)) for k in range(THREADS)]
        for t in self.threads:
            t.start()

    def good(self, tag):
        data = b"soak %s " % tag + b"x" * 64
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            got = read_all(c)
        if got != data:
            raise AssertionError("%d of %d bytes back" % (len(got), len(data)))

    def midway(self):
        """Reset after the handler answered: it is busy with us."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            c.sendall(b"y" * 4096)
            c.recv(1)

    def loop(self, k):
        period = THREADS / RATE
        nxt = time.monotonic() + k * period / THREADS
        i = 0
        while True:
            now = time.monotonic()
            if now >= self.until:
                return
            if now < nxt:
                time.sleep(nxt - now)
            nxt = max(nxt + period, time.monotonic() - period)
            i += 1
            tag = b"%d.%d" % (k, i)
            try:
                if i % 10 == 9:
                    if i % 20 == 9:
                        reset_client(("127.0.0.1", self.port))
                    else:
                        self.midway()
                    with self.lock:
                        self.resets += 1
                else:
                    self.good(tag)
                    with self.lock:
                        self.ok += 1
            except Exception as e:  # noqa: BLE001 - counted, reported below
                if i % 10 != 9:
                    with self.lock:
                        self.bad.append("%s: %r" % (tag.decode(), e))

    def join(self):
        for t in self.threads:
            t.join(30)


@case
def steady_rate_with_resets_memory_flat():
    daemons = {
        "pool": Daemon(["-b", "echo", "-w", "2", "-c", "200", "-l", "127.0.0.1:0"]),
        "spawn": Daemon(["-c", "200", "-l", "127.0.0.1:0", "--",
                         "/bin/sh", "-c", "exec cat 2>/dev/null"]),
    }
    ports, base_children = {}, {}
    for name, d in daemons.items():
        ports[name] = parse_addr(d.listening()[0])[1][1]
    wait_until(lambda: len(proc_children(daemons["pool"].pid)) == 2, 10, "the 2 workers")
    for name, d in daemons.items():
        base_children[name] = sorted(p for p, _ in proc_children(d.pid))
    base_fds = {name: fd_count(d.pid) for name, d in daemons.items()}
    t0 = time.monotonic()
    loads = {name: Load(port, t0 + SECS) for name, port in ports.items()}
    samples = {name: [] for name in daemons}
    while time.monotonic() < t0 + SECS:
        for name, d in daemons.items():
            samples[name].append((time.monotonic() - t0, vm_rss_kb(d.pid)))
        time.sleep(SAMPLE)          # the sampling period, not a wait for an event
    for load in loads.values():
        load.join()
    for name, d in daemons.items():
        load = loads[name]
        print("# %s: %d echoed, %d reset, %d failed in %.0f s; RSS (s, KiB): %s" % (
            name, load.ok, load.resets, len(load.bad), SECS,
            " ".join("%.0f:%d" % s for s in samples[name])))
        assert not load.bad, "%s: %d well-behaved clients failed: %s\n%s" % (
            name, len(load.bad), load.bad[:10], d.log()[-3000:])
        assert load.ok > 0 and load.resets > 0, (load.ok, load.resets)
        # Every connection acceptd took has ended; the counters settle.
        wait_counters(d, timeout=30, active=0, failed=0, refused=0)
        wait_until(lambda: sorted(p for p, _ in proc_children(d.pid)) == base_children[name],
                   10, "%s: children back to %s" % (name, base_children[name]))
        assert fd_count(d.pid) == base_fds[name], (name, fd_count(d.pid), base_fds[name])
        early = [rss for t, rss in samples[name] if t >= WARM]
        if not sanitized() and len(early) >= 2:
            grew = samples[name][-1][1] - early[0]
            assert grew <= RSS_TOLERANCE_KB, "%s: RSS grew by %d KiB from %.0f s to the end" % (
                name, grew, WARM)
        assert not re.search(r"warning|error", d.log()), d.log()
        assert d.stop() == 0, d.log()


run()
