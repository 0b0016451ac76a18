"""standalone.py - acceptd binding its own listeners: IPv4, IPv6, the
default dual-stack socket, unix sockets, restart through TIME_WAIT, the
built-in services, stopping on SIGTERM/SIGINT, -v and -q."""
import errno
import os
import re
import signal
import socket
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (private_netns, Daemon, Skip, case, connect, exchange, free_port,  # noqa: E402
                          has_ipv6, parse_addr, read_all, run, run_acceptd,
                          private_netns, tmpdir, wait_port, wait_until)


def port_of(addr):
    return parse_addr(addr)[1][1]


def listen_lines(d):
    return [ln for ln in d.lines if "listening on" in ln]


def assert_refused(host, port, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return
    raise AssertionError("connect to %s port %d was accepted, expected refused" % (host, port))


@case
def echo_ipv4():
    d = Daemon(["-l", "127.0.0.1:0"])
    addr, = d.listening()
    assert addr.startswith("127.0.0.1:") and not addr.endswith(":0"), addr
    assert exchange(addr, b"hello\n") == b"hello\n"
    assert d.stop() == 0


@case
def echo_ipv6():
    if not has_ipv6():
        raise Skip("no IPv6 on loopback")
    d = Daemon(["-l", "[::1]:0"])
    addr, = d.listening()
    assert re.fullmatch(r"\[::1\]:[1-9]\d*", addr), addr
    assert exchange(addr, b"hello6\n") == b"hello6\n"
    # Bound to ::1 only: nothing listens on 127.0.0.1 at that port.
    assert len(listen_lines(d)) == 1, d.log()
    assert d.stop() == 0


@case
def port_only_is_one_dual_stack_socket():
    if not has_ipv6():
        raise Skip("no IPv6 on loopback")
    private_netns()      # binds all interfaces: only in a namespace of our own
    d = Daemon(["-l", "0"])
    addr, = d.listening()
    assert re.fullmatch(r"\[::\]:[1-9]\d*", addr), addr
    assert len(listen_lines(d)) == 1, "expected one listener:\n" + d.log()
    assert exchange(addr, b"via v4\n", family=socket.AF_INET) == b"via v4\n"
    assert exchange(addr, b"via v6\n", family=socket.AF_INET6) == b"via v6\n"
    assert d.stop() == 0


@case
def default_port_8080_and_no_arguments():
    # The default is all interfaces on 8080: in a namespace of our own,
    # where that means loopback and the port is surely free.
    private_netns()
    d = Daemon([])
    addr, = d.listening()
    assert addr == ("[::]:8080" if has_ipv6() else "0.0.0.0:8080"), addr
    assert re.search(r"started acceptd \S+: echo$", d.log(), re.M), d.log()
    assert exchange(addr, b"default\n", family=socket.AF_INET) == b"default\n"
    if has_ipv6():
        assert exchange(addr, b"default6\n", family=socket.AF_INET6) == b"default6\n"
    assert d.stop() == 0


@case
def hostname_every_address_served():
    want = sorted({ai[4][0] for ai in socket.getaddrinfo(
        "localhost", 0, type=socket.SOCK_STREAM)})
    d = Daemon(["-l", "localhost:0"])
    addrs = d.listening(count=len(want))
    assert len(listen_lines(d)) == len(want), d.log()
    got = sorted(parse_addr(a)[1][0] for a in addrs)
    assert got == want, (got, want)
    for a in addrs:
        assert port_of(a) != 0, a
        assert exchange(a, b"to " + a.encode()) == b"to " + a.encode()
    assert d.stop() == 0


@case
def unix_listener_echo_and_cleanup():
    path = os.path.join(tmpdir(), "echo.sock")
    d = Daemon(["-l", "unix:" + path])
    addr, = d.listening()
    assert addr == "unix:" + path, addr
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert exchange(addr, b"over unix\n") == b"over unix\n"
    assert d.stop() == 0
    assert not os.path.exists(path), "socket file left behind after SIGTERM"


@case
def unix_socket_mode_narrows():
    path = os.path.join(tmpdir(), "m600.sock")
    # umask 0 would give 0777: the mode must win.
    d = Daemon(["--socket-mode", "0600", "-l", "unix:" + path],
               preexec_fn=lambda: os.umask(0))
    addr, = d.listening()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    assert exchange(addr, b"x") == b"x"
    assert d.stop() == 0


@case
def unix_socket_mode_widens_past_umask():
    path = os.path.join(tmpdir(), "m660.sock")
    d = Daemon(["--socket-mode", "0660", "-l", "unix:" + path],
               preexec_fn=lambda: os.umask(0o077))
    d.listening()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o660, oct(mode)
    assert d.stop() == 0


@case
def unix_stale_socket_replaced():
    path = os.path.join(tmpdir(), "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    s.close()                       # no unlink: the file stays, nobody listens
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    d = Daemon(["-l", "unix:" + path])
    addr, = d.listening()
    assert exchange(addr, b"fresh\n") == b"fresh\n"
    assert d.stop() == 0
    assert not os.path.exists(path)


@case
def unix_live_socket_not_taken():
    path = os.path.join(tmpdir(), "live.sock")
    owner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    owner.bind(path)
    owner.listen(4)
    owner.settimeout(5)
    with owner:
        rc, _out, err = run_acceptd(["-l", "unix:" + path])
        assert rc == 1, (rc, err)
        assert err and path in err[-1], err
        assert "Address already in use" in err[-1], err
        # acceptd may have probed the socket with a connect: drop those.
        owner.setblocking(False)
        try:
            while True:
                owner.accept()[0].close()
        except BlockingIOError:
            pass
        owner.settimeout(5)
        # The owner's socket is untouched and still reachable.
        with connect("unix:" + path) as c:
            conn, _ = owner.accept()
            conn.sendall(b"still mine")
            assert c.recv(64) == b"still mine"
            conn.close()


@case
def unix_regular_file_not_removed():
    path = os.path.join(tmpdir(), "precious")
    with open(path, "w") as f:
        f.write("keep me\n")
    rc, _out, err = run_acceptd(["-l", "unix:" + path])
    assert rc == 1, (rc, err)
    assert err and path in err[-1], err
    with open(path) as f:
        assert f.read() == "keep me\n", "the regular file was touched"


def time_wait_on(port):
    """True when a TCP socket on 127.0.0.1:port is in TIME_WAIT."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "06":
                return True
    return False


@case
def restart_through_time_wait():
    d = Daemon(["-b", "daytime", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    port = port_of(addr)
    with connect(addr) as c:
        assert read_all(c).endswith(b"\r\n")   # EOF: the server closed first
    wait_until(lambda: time_wait_on(port), 5, "TIME_WAIT on port %d" % port)
    assert d.stop() == 0
    # The precondition holds: without SO_REUSEADDR the port cannot be bound.
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            assert e.errno == errno.EADDRINUSE, e
        else:
            raise AssertionError("no TIME_WAIT left to test against")
    d2 = Daemon(["-b", "daytime", "-l", "127.0.0.1:%d" % port])
    addr2, = d2.listening()
    assert addr2 == addr, (addr2, addr)
    assert exchange(addr2).endswith(b"\r\n")
    assert d2.stop() == 0


@case
def builtin_echo_large():
    d = Daemon(["-b", "echo", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    data = os.urandom(300000)
    with connect(addr) as c:
        got = b""
        # Interleave writes and reads so neither side's buffer fills up.
        for i in range(0, len(data), 30000):
            c.sendall(data[i:i + 30000])
            while len(got) < i + 30000:
                got += c.recv(65536)
        c.shutdown(socket.SHUT_WR)
        got += read_all(c)
    assert got == data, "echo returned %d bytes, not the same" % len(got)
    assert d.stop() == 0


@case
def builtin_discard():
    d = Daemon(["-b", "discard", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    # More than the kernel buffers hold: sendall only finishes if discard reads.
    assert exchange(addr, b"z" * (16 << 20), timeout=20) == b""
    assert d.stop() == 0


@case
def builtin_chargen():
    d = Daemon(["-v", "-b", "chargen", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    with connect(addr) as c:
        me = c.getsockname()[1]
        got = b""
        while len(got) < 148:
            b = c.recv(65536)
            assert b, "chargen closed the stream"
            got += b
    line0 = bytes(range(32, 104)) + b"\r\n"
    assert got[:74] == line0, got[:74]
    # RFC 864's first line, as the RFC prints it.
    assert got[:74] == (b' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ'
                        b'[\\]^_`abcdefg\r\n'), got[:74]
    assert got[74:148] == bytes(range(33, 105)) + b"\r\n", got[74:148]
    # The client went away: its connection ends in the worker (no spinning).
    d.wait_line(r"end 127\.0\.0\.1:%d worker pid \d+ after" % me)
    assert d.stop() == 0


@case
def builtin_daytime():
    d = Daemon(["-b", "daytime", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    got = exchange(addr)
    assert got.endswith(b"\r\n") and got.count(b"\n") == 1, got
    assert re.fullmatch(rb"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}.*\r\n", got), got
    assert d.stop() == 0


@case
def builtin_time():
    d = Daemon(["-b", "time", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    got = exchange(addr)
    assert len(got) == 4, got
    now = time.time() + 2208988800
    val = int.from_bytes(got, "big")
    assert abs(val - now) < 5, (val, now)
    assert d.stop() == 0


def stop_by(sig):
    d = Daemon(["-l", "127.0.0.1:0"])
    addr, = d.listening()
    port = port_of(addr)
    assert exchange(addr, b"before\n") == b"before\n"
    d.signal(sig)
    assert d.wait() == 0, d.log()
    assert re.search(r"SIG%s: stopping" % signal.Signals(sig).name[3:], d.log()), d.log()
    assert_refused("127.0.0.1", port)


@case
def sigterm_exits_0_and_closes_port():
    stop_by(signal.SIGTERM)


@case
def sigint_exits_0_and_closes_port():
    stop_by(signal.SIGINT)


def verbose_lines(args, pid_word, status):
    """-v: one "connection" and one "end" line per connection, naming the
    same process; pid_word is "pid" (spawn) or "worker pid" (pool)."""
    d = Daemon(["-v", "-l", "127.0.0.1:0"] + args)
    addr, = d.listening()
    clients = []
    for i in range(3):
        with connect(addr) as c:
            clients.append(c.getsockname()[1])
            c.sendall(b"%d" % i)
            c.shutdown(socket.SHUT_WR)
            assert read_all(c) == b"%d" % i
    for p in clients:
        d.wait_line(r"end 127\.0\.0\.1:%d %s \d+ %safter" % (p, pid_word, status))
    log = d.log()
    for p in clients:
        conn = re.findall(r"connection 127\.0\.0\.1:%d on %s %s (\d+)$"
                          % (p, re.escape(addr), pid_word), log, re.M)
        ends = re.findall(r"end 127\.0\.0\.1:%d %s (\d+) %safter [\d.]+s$"
                          % (p, pid_word, status), log, re.M)
        assert len(conn) == 1 and conn == ends, (p, conn, ends, log)
    assert len(re.findall(r"connection ", log)) == 3, log
    assert len(re.findall(r" end ", log)) == 3, log
    assert d.stop() == 0


@case
def verbose_logs_each_connection():
    verbose_lines(["--", "/bin/cat"], "pid", "status 0 ")


@case
def verbose_logs_each_pool_connection():
    verbose_lines(["-b", "echo"], "worker pid", "")


@case
def default_verbosity_no_connection_lines():
    d = Daemon(["-l", "127.0.0.1:0"])
    addr, = d.listening()
    assert exchange(addr, b"q") == b"q"
    assert d.stop() == 0
    assert not re.search(r"connection |: end ", d.log()), d.log()
    assert re.search(r"stopped: active 0 total 1 ", d.log()), d.log()


@case
def quiet_logs_nothing():
    port = free_port()
    d = Daemon(["-q", "-l", "127.0.0.1:%d" % port])
    wait_port("127.0.0.1", port)
    assert exchange("127.0.0.1:%d" % port, b"shh") == b"shh"
    assert d.stop() == 0
    assert d.lines == [], "-q logged:\n" + d.log()


run()
