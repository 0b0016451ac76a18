"""sockopts.py - the socket options an operator sets on the command line
reach the kernel: -D/--nodelay and --keepalive on accepted connections
(seen from inside the handler), --backlog on the listening socket (as ss(8) reports it), and
--reuseport letting two instances share one port, both serving."""
import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import Daemon, Skip, case, exchange, parse_addr, run  # noqa: E402

# Prints TCP_NODELAY of the connection it was given on fd 0.
NODELAY_PROBE = [sys.executable, "-c",
                 "import socket,sys\n"
                 "s = socket.socket(fileno=0)\n"
                 "v = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)\n"
                 "sys.stdout.write('nodelay=%d' % (v != 0)); sys.stdout.flush()\n"
                 "s.detach()\n"]


# Prints SO_KEEPALIVE and the three TCP keepalive timers of fd 0.
KEEPALIVE_PROBE = [sys.executable, "-c",
                   "import socket,sys\n"
                   "s = socket.socket(fileno=0)\n"
                   "v = [s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0] + [\n"
                   "    s.getsockopt(socket.IPPROTO_TCP, o) for o in\n"
                   "    (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT)]\n"
                   "sys.stdout.write('%d %d %d %d' % tuple(v)); sys.stdout.flush()\n"
                   "s.detach()\n"]


def port_of(addr):
    return parse_addr(addr)[1][1]


@case
def nodelay_reaches_the_handler():
    for args, want in ((["-D"], b"nodelay=1"), ([], b"nodelay=0")):
        d = Daemon(args + ["-l", "127.0.0.1:0", "--"] + NODELAY_PROBE)
        addr, = d.listening()
        assert exchange(addr) == want, (args, d.log())
        assert d.stop() == 0


@case
def keepalive_reaches_the_handler():
    def probe(args):
        d = Daemon(args + ["-l", "127.0.0.1:0", "--"] + KEEPALIVE_PROBE)
        addr, = d.listening()
        got = exchange(addr).decode().split()
        assert d.stop() == 0
        return [int(x) for x in got]
    off = probe([])
    assert off[0] == 0, off
    kernel = off[1:]            # the kernel's timers, whatever this host set
    assert probe(["--keepalive", "yes"]) == [1] + kernel
    assert probe(["--keepalive", "60,10,5"]) == [1, 60, 10, 5]
    assert probe(["--keepalive", "75"]) == [1, 75] + kernel[1:]


def listen_queue_limit(port):
    """Send-Q of the listening socket on 127.0.0.1:port: its backlog."""
    try:
        out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                             text=True, timeout=10).stdout
    except FileNotFoundError:
        raise Skip("ss (iproute2) is not installed")
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[3].endswith(":%d" % port):
            return int(f[2])
    raise AssertionError("no listening socket on port %d in ss output:\n%s" % (port, out))


@case
def backlog_sets_the_listen_queue():
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    for n in (7, 100):
        d = Daemon(["--backlog", str(n), "-l", "127.0.0.1:0"])
        addr, = d.listening()
        assert listen_queue_limit(port_of(addr)) == min(n, somaxconn)
        assert d.stop() == 0


@case
def reuseport_two_instances_share_a_port():
    d1 = Daemon(["--reuseport", "-l", "127.0.0.1:0", "--", "/bin/echo", "one"])
    addr, = d1.listening()
    port = port_of(addr)
    # Without --reuseport the second bind fails: exit 1, naming the address.
    d0 = Daemon(["-l", "127.0.0.1:%d" % port])
    assert d0.wait() == 1
    assert re.search(r"127\.0\.0\.1:%d.*Address already in use" % port, d0.log()), d0.log()
    d2 = Daemon(["--reuseport", "-l", "127.0.0.1:%d" % port, "--", "/bin/echo", "two"])
    d2.listening()
    # The kernel spreads connections over both by a hash of the client's
    # address and port: fresh client ports reach both within a few tries.
    seen = set()
    for _ in range(200):
        seen.add(exchange(addr).strip())
        if seen == {b"one", b"two"}:
            break
    assert seen == {b"one", b"two"}, seen
    # One stops: the other keeps the port and serves every connection.
    assert d1.stop() == 0
    for _ in range(5):
        assert exchange(addr).strip() == b"two"
    assert d2.stop() == 0


run()
