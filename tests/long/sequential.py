"""sequential.py (make check-long) - 100,000 connections one after another,
in pool mode (built-in echo, two workers) and in spawn mode (a handler
process each): afterwards the master holds the same fds as before, the
same children (the same workers; no handler, no zombie), and no more
memory than before beyond a small tolerance.

Load: connbench from ../shared/bench (one client, -n 100000), compiled
here; without it, a Python client does the same, more slowly.

The baseline is taken after a warm-up of 2,000 connections, so what a
first connection touches once (stdio buffers, the first pages of the
fixed-size tables, malloc's arenas) is in it.  RSS tolerance: 256 KiB.  A
leak of one malloc'd block per connection - 32 bytes at least in glibc -
is 3.2 MB over 100,000; one per ten connections still 320 KB.  Less than
that the tolerance would not see; the counters, fds and children checks
are exact.  Under ASan the RSS check is skipped (its allocator keeps freed
memory in quarantine); LeakSanitizer covers leaks there."""
import os
import re
import socket
import subprocess
import sys
import time

os.environ.setdefault("ACCEPTD_CASE_TIMEOUT", "300")
sys.path.insert(0, os.environ.get("ACCEPTD_TESTLIB") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from acceptd_test import (Daemon, case, connbench_binary, fd_count,  # noqa: E402
                          parse_addr, proc_children, read_all, run, sanitized,
                          vm_rss_kb, wait_counters, wait_until)

N = int(os.environ.get("ACCEPTD_LONG_CONNS", "100000"))
WARMUP = 2000
RSS_TOLERANCE_KB = 256
CB = connbench_binary()


def sequential(port, n, payload):
    """n connections one after another; returns a one-line summary.  Each
    must succeed: with a payload, the echo must come back whole; without,
    the handler's end must close the connection (EOF)."""
    if CB:
        args = [CB, "-c", "1", "-n", str(n), "-d", "3000", "-T", "10000", "-q"]
        if payload:
            args += ["-p", payload.decode(), "-E"]
        r = subprocess.run(args + ["127.0.0.1", str(port)], capture_output=True,
                           text=True, timeout=1200)
        m = re.search(r"ok=(\d+) errors=(\d+)", r.stdout)
        assert m, (r.stdout, r.stderr)
        assert (int(m.group(1)), int(m.group(2))) == (n, 0), r.stdout
        return r.stdout.strip()
    t0 = time.monotonic()
    for i in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            if payload:
                c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            got = read_all(c)
        assert got == payload, (i, got)
    return "python client: %d ok in %.1f s" % (n, time.monotonic() - t0)


def footprint(d, children):
    return {"fds": fd_count(d.pid), "rss_kb": vm_rss_kb(d.pid), "children": children()}


def hundred_thousand(args, payload, want_children):
    d = Daemon(["-l", "127.0.0.1:0"] + args)
    addr, = d.listening()
    port = parse_addr(addr)[1][1]

    def children():
        return sorted(p for p, _ in proc_children(d.pid))
    # The workers start asynchronously: wait until they are all there.
    wait_until(lambda: len(children()) == want_children, 10, "%d workers" % want_children)
    sequential(port, WARMUP, payload)
    wait_counters(d, timeout=30, active=0, total=WARMUP)
    wait_until(lambda: len(children()) == want_children, 10, "the warm-up's handlers reaped")
    before = footprint(d, children)
    summary = sequential(port, N, payload)
    wait_counters(d, timeout=60, active=0, total=WARMUP + N, refused=0, failed=0)
    wait_until(lambda: children() == before["children"], 10,
               "acceptd's children back to %s" % before["children"])
    after = footprint(d, children)
    print("# %s" % summary)
    print("# master before: %s; after %d more: %s" % (before, N, after))
    assert after["fds"] == before["fds"], (before, after)
    assert after["children"] == before["children"], (before, after)
    if not sanitized():
        grew = after["rss_kb"] - before["rss_kb"]
        assert grew <= RSS_TOLERANCE_KB, "RSS grew by %d KiB over %d connections" % (grew, N)
    assert not re.search(r"warning|error", d.log()), d.log()
    assert d.stop() == 0, d.log()


@case
def hundred_thousand_sequential_pool():
    hundred_thousand(["-b", "echo", "-w", "2"], b"ping", 2)


@case
def hundred_thousand_sequential_spawn():
    hundred_thousand(["--", "/bin/true"], b"", 0)


run()
