"""proxy.py - --proxy-protocol end to end: the PROXY header (HAProxy's
proxy-protocol.txt, v1 and v2) read by the real daemon from real sockets.

What the handler sees (the header's source and destination become the
TCP* and REMOTE_* variables; UNKNOWN, LOCAL and the unspecified or unix
families keep the real ones), the bytes after the header reaching the
handler exactly as sent however the header was split, bad headers refused
at once with the first bytes escaped in the log, the 3 s deadline against
slowloris clients (with the daemon staying responsive and idle),
--proxy-from, the claimed address as what --allow/--deny, -C, --rate and
the log see, the worker pool (built-in echo and the example workers,
including a header that completes while every worker is busy), single
connections (systemd-socket-activate -a, --inetd, xinetd nowait), unix
listeners, stopping with headers still being read, and a real HAProxy
(send-proxy, send-proxy-v2, with crc32c) in front.

Addresses in headers are documentation ranges (192.0.2.0/24,
198.51.100.0/24, 2001:db8::/32): they are only claimed, never contacted.
Every socket is on loopback or is a unix socket.  Readiness comes from
acceptd's log (listening, connection and end lines, SIGUSR1 counters),
from systemd-socket-activate's log, or from /proc/net/tcp for the foreign
daemons; the only sleeps are the gaps that split a header into several
TCP segments and the bounded windows in which something must NOT happen."""
import errno
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (counters, wait_counters, ACCEPTD, Daemon, Skip, case,  # noqa: E402
                          closing_all, connect, free_port, has_ipv6, parse_addr, proc_stat,
                          run, tmpdir, wait_until)

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
PROXY_ENV = os.path.join(HELPERS, "proxy_env.sh")
HANDLER = ["--", "/bin/sh", PROXY_ENV]
SSA = shutil.which("systemd-socket-activate")
XINETD = shutil.which("xinetd")
HAPROXY = shutil.which("haproxy")
C_WORKER = os.environ.get("ACCEPTD_C_WORKER")
PY_WORKER = os.environ.get("ACCEPTD_PY_WORKER")

WORKER_LINE = r"worker (\d+): (tcp|unix) (\S*) (\d*) via (\S+), connnum (\d+)\n"
WARN_ANYONE = ("warning: --proxy-protocol without --proxy-from: any client that can "
               "connect may claim any address")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- PROXY headers, built here independently of the daemon's parser --------

def v1(proto="TCP4", src="192.0.2.7", dst="198.51.100.1", sport=40000, dport=443):
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def _crc32c_table():
    t = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283     # RFC 3720 B.4's check value


def tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


def v2(cmd=1, fam="inet", src="192.0.2.7", dst="198.51.100.1", sport=40000, dport=443,
       tlvs=b"", crc=None, version=2, transport=1, length=None):
    """A v2 header.  fam: inet, inet6, unix or unspec.  crc: None, 'first'
    or 'last' (where the CRC32c TLV goes among tlvs), or 'bad'.  length
    overrides the length field; version the version nibble."""
    if fam == "inet":
        famb = 0x10
        addrs = (socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
                 + struct.pack("!HH", sport, dport))
    elif fam == "inet6":
        famb = 0x20
        addrs = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                 + struct.pack("!HH", sport, dport))
    elif fam == "unix":
        famb = 0x30
        addrs = b"/tmp/claimed-src".ljust(108, b"\0") + b"/tmp/claimed-dst".ljust(108, b"\0")
    else:
        famb = 0x00
        addrs = b""
    crc_tlv = tlv(0x03, b"\0\0\0\0")
    if crc in ("first",):
        body = addrs + crc_tlv + tlvs
    elif crc in ("last", "bad"):
        body = addrs + tlvs + crc_tlv
    else:
        body = addrs + tlvs
    hdr = bytearray(V2_SIG + bytes([version << 4 | cmd, famb | transport])
                    + struct.pack("!H", len(body) if length is None else length) + body)
    if crc:
        at = hdr.index(crc_tlv, 16 + len(addrs)) + 3
        value = crc32c(bytes(hdr))
        if crc == "bad":
            value ^= 1
        hdr[at:at + 4] = struct.pack("!I", value)
    return bytes(hdr)


def escaped(data):
    """The log's rendering of network bytes: printable ASCII but the
    backslash stays, everything else is \\xHH; the first 32 bytes, then
    '...' when there were more."""
    text = "".join(chr(c) if 0x20 <= c < 0x7f and c != 0x5c else "\\x%02x" % c
                   for c in data[:32])
    return '(got "%s"%s)' % (text, "..." if len(data) > 32 else "")


# --- talking to acceptd ------------------------------------------------------

def start(args=(), listen=("127.0.0.1:0",), handler=HANDLER, verbose=True):
    """acceptd --proxy-protocol with its own listeners; returns (Daemon,
    [listener addresses])."""
    cmd = (["-v"] if verbose else []) + ["--proxy-protocol"]
    for a in listen:
        cmd += ["-l", a]
    d = Daemon(cmd + list(args) + list(handler))
    return d, d.listening(len(listen))


def dial(addr, family=None, bind=None, timeout=10):
    """A connected client socket (TCP_NODELAY, so each send is a segment);
    bind: the local address to connect from, as a (host, port) tuple."""
    if not isinstance(addr, str):
        fam, sa = addr
    elif bind:
        fam, sa = parse_addr(addr)
    else:
        s = connect(addr, family, timeout)
        if s.family != socket.AF_UNIX:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if bind:
        s.bind(bind)
    s.connect(sa)
    if fam != socket.AF_UNIX:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_to_eof(sock, timeout=20):
    sock.settimeout(timeout)
    chunks = []
    while True:
        b = sock.recv(1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def transfer(sock, parts, gap=0.0, timeout=20):
    """Send parts (bytes, in order, `gap` seconds apart) from a thread,
    half-close, and meanwhile read to end of file: a handler echoing a
    large payload never blocks on a client that is still sending."""
    err = []

    def send():
        try:
            for i, p in enumerate(parts):
                if i and gap:
                    time.sleep(gap)     # stimulus: separate TCP segments
                sock.sendall(p)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        out = read_to_eof(sock, timeout)
    finally:
        t.join(timeout)
    assert not err, "sending failed: %r" % err
    return out


def served(out):
    """proxy_env.sh's output -> (env dict, the bytes echoed after END)."""
    head, sep, rest = out.partition(b"\nEND\n")
    assert sep, "handler output incomplete: %r" % out[:300]
    env = dict(ln.split("=", 1) for ln in head.decode("utf-8", "replace").splitlines())
    return env, rest


def request(addr, parts, gap=0.0, family=None, bind=None):
    """One connection: send parts, half-close, read the handler's report.
    Returns (the client's own address, env, echoed bytes)."""
    if isinstance(parts, bytes):
        parts = [parts]
    with dial(addr, family, bind) as s:
        me = s.getsockname()
        env, echoed = served(transfer(s, parts, gap))
    return me, env, echoed


def check_env(env, remote, local, listener=None):
    """remote, local: (ip, port) the handler must see."""
    want = {"PROTO": "TCP", "TCPREMOTEIP": remote[0], "TCPREMOTEPORT": str(remote[1]),
            "REMOTE_ADDR": remote[0], "REMOTE_PORT": str(remote[1]),
            "TCPLOCALIP": local[0], "TCPLOCALPORT": str(local[1])}
    if listener:
        want["ACCEPTD_LISTENER"] = listener
    bad = {k: (env.get(k), v) for k, v in want.items() if env.get(k) != v}
    assert not bad, "handler saw (got, want) %r; env %r" % (bad, env)
    for k in ("UNIXREMOTEEUID", "UNIXREMOTEEGID", "UNIXREMOTEPID"):
        assert k not in env, env


def real_addrs(sock):
    """(remote, local) as the handler should see them without a proxy:
    the client's own address and the one it connected to."""
    return sock.getsockname()[:2], sock.getpeername()[:2]



def closed_by_peer(sock, timeout):
    """Wait for end of file or a reset; return the seconds it took, or
    fail if data arrives or nothing happens within timeout."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    try:
        got = sock.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - t0
    except socket.timeout:
        raise AssertionError("connection still open after %.1f s" % timeout)
    assert got == b"", "expected the connection closed, got %r" % got[:200]
    return time.monotonic() - t0


def half_close(sock):
    """SHUT_WR, tolerating a peer that already closed (and reset) the
    connection: a refusal may come before the client is done sending."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        if e.errno not in (errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE):
            raise


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime


def listening_on(port, family=socket.AF_INET):
    """True when some socket listens on this TCP port (from /proc: a
    readiness check that opens no connection)."""
    table = "/proc/net/tcp" if family == socket.AF_INET else "/proc/net/tcp6"
    with open(table) as f:
        for row in f.read().splitlines()[1:]:
            col = row.split()
            if col[3] == "0A" and int(col[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def held_by(pid, lport, rport):
    """True when process pid holds an fd of the accepted IPv4 socket
    lport <- rport (so acceptd has accepted that client)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            col = row.split()
            if (int(col[1].rsplit(":", 1)[1], 16) == lport and
                    int(col[2].rsplit(":", 1)[1], 16) == rport):
                inodes.add(col[9])
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            m = re.match(r"socket:\[(\d+)\]$", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            continue
        if m and m.group(1) in inodes:
            return True
    return False


def silent_for(sock, secs):
    """True if sock stays open and silent for secs (a bounded window for
    something that must not happen)."""
    sock.settimeout(secs)
    try:
        got = sock.recv(1)
    except socket.timeout:
        return True
    except ConnectionResetError:
        raise AssertionError("connection reset while it should wait")
    raise AssertionError("expected nothing yet, got %r" % got)


def read_line(sock, timeout=10):
    sock.settimeout(timeout)
    line = b""
    while not line.endswith(b"\n"):
        b = sock.recv(1)
        assert b, "end of file after %r" % line
        line += b
    return line.decode()


def recv_exact(sock, n, timeout=10):
    sock.settimeout(timeout)
    got = b""
    while len(got) < n:
        b = sock.recv(n - len(got))
        assert b, "end of file after %d of %d bytes" % (len(got), n)
        got += b
    return got


# --- 1. what the handler sees ------------------------------------------------

@case
def v1_tcp4_sets_claimed_addresses():
    d, (addr,) = start()
    me, env, echoed = request(addr, v1("TCP4", "192.0.2.7", "198.51.100.1", 40000, 443)
                              + b"payload\n")
    check_env(env, ("192.0.2.7", 40000), ("198.51.100.1", 443), listener=addr)
    assert env.get("TCPCONNNUM") == "1", env
    assert echoed == b"payload\n", echoed
    assert env.get("PPID") == str(d.pid), env
    # Ports at their limits, and the address in the log is the claimed one.
    _, env, echoed = request(addr, v1("TCP4", "255.255.255.255", "0.0.0.0", 65535, 0))
    check_env(env, ("255.255.255.255", 65535), ("0.0.0.0", 0))
    assert echoed == b""
    d.wait_line(r"connection 192\.0\.2\.7:40000 on %s pid \d+$" % re.escape(addr))
    d.wait_line(r"end 192\.0\.2\.7:40000 pid \d+ status 0 after")
    assert "127.0.0.1:%d" % me[1] not in d.log(), d.log()
    assert d.stop() == 0, d.log()


@case
def v1_tcp6_sets_claimed_addresses():
    listen = ["127.0.0.1:0"] + (["[::1]:0"] if has_ipv6() else [])
    d, addrs = start(listen=listen)
    for addr in addrs:
        # Written long-hand: the handler gets the canonical (inet_ntop) form.
        hdr = v1("TCP6", "2001:db8:0:0:1:0:0:7", "2001:DB8::1", 51234, 8443)
        _, env, echoed = request(addr, hdr + b"six\n")
        check_env(env, ("2001:db8::1:0:0:7", 51234), ("2001:db8::1", 8443), listener=addr)
        assert echoed == b"six\n", echoed
    # The longest v1 line there is (104 bytes) is accepted.
    full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    hdr = v1("TCP6", full, full, 65535, 65535)
    assert len(hdr) == 104, len(hdr)
    _, env, echoed = request(addrs[0], hdr + b"x")
    check_env(env, (full, 65535), (full, 65535))
    assert echoed == b"x"
    assert d.stop() == 0, d.log()


@case
def v1_unknown_keeps_real_addresses():
    d, (addr,) = start()
    for hdr in (b"PROXY UNKNOWN\r\n",
                # UNKNOWN may carry anything up to the CRLF; it is ignored.
                b"PROXY UNKNOWN 192.0.2.7 198.51.100.1 1 2\r\n",
                (b"PROXY UNKNOWN " + b"u" * 107)[:105] + b"\r\n"):     # 107 bytes: the limit
        with dial(addr) as s:
            remote, local = real_addrs(s)
            env, echoed = served(transfer(s, [hdr + b"after unknown\n"]))
        check_env(env, remote, local, listener=addr)
        assert echoed == b"after unknown\n", (hdr, echoed)
    assert d.stop() == 0, d.log()


@case
def v2_local_and_unspec_keep_real_addresses():
    d, (addr,) = start()
    for hdr in (v2(cmd=0, fam="unspec"),
                v2(cmd=0, fam="inet"),       # LOCAL: addresses present but ignored
                v2(cmd=1, fam="unspec"),
                v2(cmd=1, fam="unix"),
                v2(cmd=0, fam="unspec", tlvs=tlv(0xEE, b"health check"), crc="last")):
        with dial(addr) as s:
            remote, local = real_addrs(s)
            env, echoed = served(transfer(s, [hdr + b"\r\nafter v2\r\n"]))
        check_env(env, remote, local, listener=addr)
        assert echoed == b"\r\nafter v2\r\n", (hdr, echoed)
    assert d.stop() == 0, d.log()


@case
def v2_inet_and_inet6_set_claimed_addresses():
    d, (addr,) = start()
    cases = [
        (v2(fam="inet", src="192.0.2.9", dst="198.51.100.2", sport=1, dport=65535),
         ("192.0.2.9", 1), ("198.51.100.2", 65535)),
        (v2(fam="inet6", src="2001:db8::9", dst="2001:db8::a", sport=4321, dport=80),
         ("2001:db8::9", 4321), ("2001:db8::a", 80)),
        # With TLVs: an ALPN, an authority, a NOOP.
        (v2(fam="inet", src="192.0.2.10", dst="198.51.100.3", sport=5000, dport=443,
            tlvs=tlv(0x01, b"h2") + tlv(0x02, b"example.org") + tlv(0x04, b"\0" * 5)),
         ("192.0.2.10", 5000), ("198.51.100.3", 443)),
        # With a correct CRC32c, first and last among the TLVs.
        (v2(fam="inet", src="192.0.2.11", dst="198.51.100.4", sport=6000, dport=25,
            tlvs=tlv(0x05, b"unique-id"), crc="first"),
         ("192.0.2.11", 6000), ("198.51.100.4", 25)),
        (v2(fam="inet6", src="2001:db8::11", dst="2001:db8::12", sport=7000, dport=993,
            tlvs=tlv(0x01, b"imap"), crc="last"),
         ("2001:db8::11", 7000), ("2001:db8::12", 993)),
        # The largest header accepted: 2048 bytes of addresses and TLVs.
        (v2(fam="inet", src="192.0.2.12", dst="198.51.100.5", sport=8000, dport=8080,
            tlvs=tlv(0xE0, b"\xa5" * (2048 - 12 - 3))),
         ("192.0.2.12", 8000), ("198.51.100.5", 8080)),
    ]
    assert len(cases[-1][0]) == 16 + 2048
    for hdr, remote, local in cases:
        # The payload starts with what could be the rest of a longer header.
        _, env, echoed = request(addr, hdr + b"\x00\x0b after v2")
        check_env(env, remote, local, listener=addr)
        assert echoed == b"\x00\x0b after v2", (remote, echoed)
    assert d.stop() == 0, d.log()


# --- 2. the bytes after the header -------------------------------------------

ALL_BYTES = bytes(range(256))


@case
def payload_in_the_same_send_is_byte_exact():
    d, (addr,) = start()
    tricky = (b"\r\n" + v1() + ALL_BYTES + b"PROXY TCP4 " + V2_SIG + v2() + b"\r\n\r\n"
              + ALL_BYTES[::-1] + b"\n")
    for hdr in (v1(), v2(), v2(fam="inet6", src="2001:db8::1", dst="2001:db8::2")):
        _, env, echoed = request(addr, hdr + tricky)
        assert echoed == tricky, "payload changed after %r: %r" % (hdr[:20], echoed[:80])
        assert env.get("TCPREMOTEIP") in ("192.0.2.7", "2001:db8::1"), env
    # Nothing after the header at all.
    _, env, echoed = request(addr, v2())
    assert echoed == b"" and env.get("TCPREMOTEIP") == "192.0.2.7", (env, echoed)
    assert d.stop() == 0, d.log()


@case
def header_split_over_several_sends():
    d, (addr,) = start()
    h1 = v1("TCP4", "192.0.2.21", "198.51.100.21", 2121, 21)
    h2 = v2(fam="inet6", src="2001:db8::21", dst="2001:db8::22", sport=2222, dport=22,
            tlvs=tlv(0x02, b"split.example"), crc="last")
    payload = b"PROXY TCP4 192.0.2.99 198.51.100.99 9 9\r\n" + ALL_BYTES
    splits = [
        # v1 cut inside the signature, inside an address, between CR and LF
        ([h1[:3], h1[3:17], h1[17:-1], h1[-1:], payload], ("192.0.2.21", 2121)),
        # v1 one byte per segment, then the payload
        ([h1[i:i + 1] for i in range(len(h1))] + [payload], ("192.0.2.21", 2121)),
        # v2 cut inside the signature, the fixed part, the addresses, a TLV
        ([h2[:5], h2[5:14], h2[14:30], h2[30:60], h2[60:], payload],
         ("2001:db8::21", 2222)),
        # header and the first payload byte together, the rest later
        ([h2 + payload[:1], payload[1:]], ("2001:db8::21", 2222)),
    ]
    for parts, remote in splits:
        _, env, echoed = request(addr, parts, gap=0.02)
        assert env.get("TCPREMOTEIP") == remote[0], (remote, env)
        assert env.get("TCPREMOTEPORT") == str(remote[1]), (remote, env)
        assert echoed == payload, "split %r: echoed %r" % ([len(p) for p in parts], echoed[:80])
    assert d.stop() == 0, d.log()


@case
def one_megabyte_payload_round_trip():
    d, (addr,) = start()
    big = (ALL_BYTES * 4096)[: 1 << 20]
    big = big[:5000] + v1() + big[5000 + len(v1()):]          # a header inside, too
    assert len(big) == 1 << 20
    for parts in ([v1("TCP4", "192.0.2.30", "198.51.100.30", 3030, 30), big[:65536],
                   big[65536:]],
                  [v2(crc="last") + big]):
        with dial(addr) as s:
            env, echoed = served(transfer(s, parts, timeout=30))
        assert len(echoed) == len(big), (len(echoed), len(big))
        assert echoed == big, "1 MB payload corrupted at byte %d" % next(
            i for i in range(len(big)) if echoed[i] != big[i])
        assert env.get("TCPREMOTEIP") in ("192.0.2.30", "192.0.2.7"), env
    assert d.stop() == 0, d.log()


# --- 3. bad headers ------------------------------------------------------------

BAD = [
    ("http request", b"GET / HTTP/1.0\r\n\r\n", "not a PROXY header"),
    ("v1 LF only", b"PROXY TCP4 192.0.2.1 198.51.100.1 1000 2000\nhello",
     "v1: LF without CR"),
    ("v1 no CRLF in 107 bytes", b"PROXY UNKNOWN " + b"x" * 100, "v1: no CRLF within 107 bytes"),
    ("v1 108 bytes", (b"PROXY UNKNOWN " + b"y" * 107)[:106] + b"\r\n",
     "v1: no CRLF within 107 bytes"),
    ("v1 TCP4 with IPv6", b"PROXY TCP4 2001:db8::1 198.51.100.1 1000 2000\r\n",
     "v1: bad IPv4 address"),
    ("v1 octal IPv4", b"PROXY TCP4 192.0.2.010 198.51.100.1 1000 2000\r\n",
     "v1: bad IPv4 address"),
    ("v1 octal IPv4 dst", b"PROXY TCP4 192.0.2.1 0198.51.100.1 1000 2000\r\n",
     "v1: bad IPv4 address"),
    ("v1 port 65536", b"PROXY TCP4 192.0.2.1 198.51.100.1 65536 80\r\n", "v1: bad port"),
    ("v1 TCP6 with IPv4", b"PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n", "v1: bad IPv6 address"),
    ("v2 version 1 nibble", v2(version=1), "v2: version is not 2"),
    ("v2 version 3 nibble", v2(version=3), "v2: version is not 2"),
    ("v2 TLV overruns", v2(tlvs=b"\xe0\x00\x0a" + b"ab"), "v2: TLVs overrun the header"),
    ("v2 1 stray byte", v2(tlvs=b"\x00"), "v2: stray bytes after the TLVs"),
    ("v2 2 stray bytes", v2(tlvs=tlv(0x01, b"h2") + b"\x00\x00"),
     "v2: stray bytes after the TLVs"),
    ("v2 bad CRC32c", v2(tlvs=tlv(0x01, b"h2"), crc="bad"), "v2: bad CRC32c"),
    ("v2 length 2049", v2(tlvs=tlv(0xE0, b"z" * (2049 - 12 - 3))),
     "v2: header longer than 2048 bytes"),
    ("v2 length 65535 claimed", v2(length=0xFFFF), "v2: header longer than 2048 bytes"),
    ("v2 UDP over TCP", v2(transport=2), "v2: UDP addresses on a stream connection"),
    ("v2 command 2", v2(cmd=2), "v2: unknown command"),
    ("v1 UDP4", b"PROXY UDP4 192.0.2.1 198.51.100.1 1 2\r\n", "v1: unknown protocol"),
]


def refuse_batch(cases):
    """Each bad header on a connection of its own, sent in one piece: the
    connection is closed at once (not at the 3 s deadline), no handler
    runs, the refusal is logged with the first bytes escaped, and refused
    grows by one.  At most 5 per daemon: refusals are logged at most 5 a
    second."""
    assert len(cases) <= 5
    d, (addr,) = start()
    for n, (name, data, why) in enumerate(cases, 1):
        with dial(addr) as s:
            port = s.getsockname()[1]
            s.sendall(data)
            took = closed_by_peer(s, 5)
        assert took < 1.5, "%s: closed after %.2f s, not at once" % (name, took)
        want = "127.0.0.1:%d: bad PROXY header: %s %s; closed" % (port, why, escaped(data))
        try:
            d.wait_line(re.escape(want) + "$")
        except AssertionError:
            raise AssertionError("%s: no log line %r; log:\n%s" % (name, want, d.log()))
        c = counters(d)
        assert (c["refused"], c["total"], c["active"]) == (n, 0, 0), (name, c)
    assert not re.search(r"connection \S+ on|END|pid \d+ status", d.log()), d.log()
    assert d.stop() == 0, d.log()


@case
def bad_headers_closed_at_once_1():
    refuse_batch(BAD[0:5])


@case
def bad_headers_closed_at_once_2():
    refuse_batch(BAD[5:10])


@case
def bad_headers_closed_at_once_3():
    refuse_batch(BAD[10:15])


@case
def bad_headers_closed_at_once_4():
    refuse_batch(BAD[15:20])


@case
def client_closing_mid_header():
    d, (addr,) = start()
    for n, data in enumerate((b"PROXY TCP4 192.0.2.1 19", v2()[:20], b""), 1):
        with dial(addr) as s:
            port = s.getsockname()[1]
            if data:
                s.sendall(data)
            half_close(s)
            took = closed_by_peer(s, 5)
        assert took < 1.5, "closed after %.2f s" % took
        if data:
            want = "127.0.0.1:%d: closed in the middle of its PROXY header %s; closed" % (
                port, escaped(data))
        else:
            want = "127.0.0.1:%d: closed before sending a PROXY header; closed" % port
        d.wait_line(re.escape(want) + "$")
        assert counters(d)["refused"] == n
    assert "END" not in d.log() and not re.search(r"connection \S+ on", d.log()), d.log()
    assert d.stop() == 0, d.log()


@case
def incomplete_header_times_out_after_3s():
    d, (addr,) = start()
    with dial(addr) as s:
        port = s.getsockname()[1]
        t0 = time.monotonic()       # connected: acceptd's deadline runs
        s.sendall(b"PROXY TCP4 192.0.2.1 ")
        closed_by_peer(s, 6)
        took = time.monotonic() - t0
    assert 2.0 <= took <= 4.0, "closed after %.2f s, want 3 +- 1" % took
    d.wait_line(r"127\.0\.0\.1:%d: no complete PROXY header within 3 s; closed$" % port)
    c = counters(d)
    assert (c["refused"], c["total"]) == (1, 0), c
    assert d.stop() == 0, d.log()


# --- 4. slowloris --------------------------------------------------------------

@case
def slowloris_does_not_starve_good_clients():
    d, (addr,) = start(["-c", "100"], verbose=False)
    sa = parse_addr(addr)[1]
    header = v1("TCP4", "192.0.2.40", "198.51.100.40", 4040, 40)
    slow = []           # [sock, connected at, bytes sent, closed at]
    ticks0 = cpu_ticks(d.pid)
    t_start = time.monotonic()
    for i in range(20):
        s = socket.create_connection(sa, timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        slow.append([s, time.monotonic(), 0 if i % 2 else None, None])
    good = []
    next_good = time.monotonic()
    with closing_all([c[0] for c in slow]):
        while any(c[3] is None for c in slow):
            now = time.monotonic()
            assert now - t_start < 8, "slow clients still open after 8 s: %r" % [
                round(now - c[1], 2) for c in slow if c[3] is None]
            # The trickling half: one byte of a valid header per second.
            for c in slow:
                if c[3] is None and c[2] is not None and now - c[1] >= c[2] + 1 and \
                        c[2] < len(header):
                    try:
                        c[0].send(header[c[2]:c[2] + 1])
                        c[2] += 1
                    except OSError:
                        c[3] = time.monotonic()
            # The good client, every ~200 ms, served each time.
            if now >= next_good:
                g0 = time.monotonic()
                k = len(good)
                _, env, echoed = request(addr, v1("TCP4", "198.51.100.%d" % (k + 1),
                                                  "192.0.2.1", 10000 + k, 80) + b"good %d" % k)
                assert env.get("TCPREMOTEIP") == "198.51.100.%d" % (k + 1), env
                assert echoed == b"good %d" % k, echoed
                good.append(time.monotonic() - g0)
                next_good = g0 + 0.2
            # Wait for a slow client to be closed, or the next thing to do.
            open_ = [c for c in slow if c[3] is None]
            due = [next_good] + [c[1] + c[2] + 1 for c in open_ if c[2] is not None]
            wait = max(0.0, min(due) - time.monotonic())
            r, _, _ = select.select([c[0] for c in open_], [], [], wait)
            for c in open_:
                if c[0] in r:
                    try:
                        got = c[0].recv(100)
                    except OSError:
                        got = b""
                    assert got == b"", "a slow client was sent %r" % got
                    c[3] = time.monotonic()
        elapsed = time.monotonic() - t_start
        used = (cpu_ticks(d.pid) - ticks0) / CLK_TCK
    lifetimes = [c[3] - c[1] for c in slow]
    bad = [round(t, 2) for t in lifetimes if not 2.0 <= t <= 4.0]
    assert not bad, "slow clients closed after %s s, want 3 +- 1 (all: %s)" % (
        bad, [round(t, 2) for t in lifetimes])
    assert len(good) >= 10, "only %d good requests in %.1f s" % (len(good), elapsed)
    assert max(good) < 1.0, "a good request took %.2f s" % max(good)
    assert used / elapsed < 0.10, "acceptd used %.2f s of CPU in %.1f s" % (used, elapsed)
    c = counters(d)
    assert c["refused"] == 20 and c["total"] == len(good), (c, len(good))
    d.wait_line(r"127\.0\.0\.1:\d+: no complete PROXY header within 3 s; closed$")
    print("# slowloris: %d good requests (max %.3f s), slow clients closed after "
          "%.2f-%.2f s, acceptd CPU %.1f%%" % (len(good), max(good), min(lifetimes),
                                              max(lifetimes), 100 * used / elapsed), flush=True)
    assert d.stop() == 0, d.log()


@case
def header_readers_count_against_max_conns():
    """-c 3: three silent clients fill it; a fourth with a full header
    waits in the backlog, unserved, until their headers time out.  Three
    real peers: one alone may hold only a quarter of -c reading."""
    d, (addr,) = start(["-c", "3"])
    port = parse_addr(addr)[1][1]
    silent = [dial((socket.AF_INET, ("127.0.0.1", port)), bind=("127.0.0.%d" % (i + 1), 0))
              for i in range(3)]
    with closing_all(silent):
        for s in silent:
            wait_until(lambda: held_by(d.pid, port, s.getsockname()[1]), 5,
                       "acceptd to accept a silent client")
        t0 = time.monotonic()
        with dial(addr) as g:
            g.sendall(v1("TCP4", "192.0.2.50", "198.51.100.50", 5050, 50) + b"waited")
            g.shutdown(socket.SHUT_WR)
            assert silent_for(g, 1.5)
            assert not held_by(d.pid, port, g.getsockname()[1]), "accepted beyond -c 3"
            env, echoed = served(read_to_eof(g, 10))
        took = time.monotonic() - t0
        assert env.get("TCPREMOTEIP") == "192.0.2.50" and echoed == b"waited", (env, echoed)
        assert 1.5 <= took <= 4.5, "served after %.2f s" % took
        for s in silent:
            closed_by_peer(s, 2)
        c = counters(d)
        assert (c["refused"], c["total"]) == (3, 1), c
    assert d.stop() == 0, d.log()


# --- 5. --proxy-from -----------------------------------------------------------

@case
def one_real_peer_cannot_hold_every_slot_reading_headers():
    """-C and --rate see only the claimed address, so a real peer is held
    to a quarter of -c headers in progress (-c 8: two): a third silent
    connection of its own is closed at once, another peer is still served,
    and the slots come back as its headers come in."""
    d, (addr,) = start(["-c", "8"])
    port = parse_addr(addr)[1][1]
    # Accepted in order, so both are reading when the third comes.
    silent = [dial(addr) for _ in range(2)]
    with dial(addr) as third:
        me = third.getsockname()[1]
        assert closed_by_peer(third, 5) < 1.5
    d.wait_line(r"127\.0\.0\.1:%d: too many PROXY headers in progress; closed" % me)
    with dial((socket.AF_INET, ("127.0.0.1", port)), bind=("127.0.0.2", 0)) as other:
        env, echoed = served(transfer(other, [v1("TCP4", "192.0.2.9") + b"other"]))
    assert env["TCPREMOTEIP"] == "192.0.2.9" and echoed == b"other", env
    for s in silent:
        env, echoed = served(transfer(s, [v1() + b"late"]))
        assert echoed == b"late", env
        s.close()
    _, env, echoed = request(addr, v1() + b"again")
    assert echoed == b"again"
    assert d.stop() == 0, d.log()


@case
def proxy_from_refuses_others_before_reading():
    d, (addr,) = start(["--proxy-from", "127.0.0.2"])
    assert WARN_ANYONE not in d.log(), d.log()
    # From 127.0.0.1, saying nothing: closed at once, not after 3 s.
    with dial(addr) as s:
        me = s.getsockname()[1]
        took = closed_by_peer(s, 5)
    assert took < 1.5, "closed after %.2f s" % took
    d.wait_line(r"^acceptd: 127\.0\.0\.1:%d: not in --proxy-from; closed$" % me)
    # From 127.0.0.1 with a valid header: closed without reading it.  The
    # header waits in the kernel while acceptd is stopped, so acceptd
    # certainly closes a socket holding it: a reset (unread data) shows
    # that it was not consumed.
    os.kill(d.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: proc_stat(d.pid)[0] == "T", 5, "acceptd to stop")
        s = dial(addr)
        me = s.getsockname()[1]
        s.sendall(v1("TCP4", "192.0.2.60", "198.51.100.60", 6060, 60) + b"payload")
    finally:
        os.kill(d.pid, signal.SIGCONT)
    with s:
        s.settimeout(5)
        try:
            got = s.recv(100)
            raise AssertionError("got %r, want a reset (header left unread)" % got)
        except ConnectionResetError:
            pass
    d.wait_line(r"^acceptd: 127\.0\.0\.1:%d: not in --proxy-from; closed$" % me)
    # From 127.0.0.2: served, as the address it claims.
    me, env, echoed = request(addr, v1("TCP4", "192.0.2.61", "198.51.100.61", 6161, 61)
                              + b"trusted", bind=("127.0.0.2", 0))
    check_env(env, ("192.0.2.61", 6161), ("198.51.100.61", 61))
    assert echoed == b"trusted"
    assert me[0] == "127.0.0.2"
    log = d.log()
    assert "192.0.2.60" not in log and "END" not in log, log
    assert len(re.findall(r"connection \S+ on", log)) == 1, log
    c = counters(d)
    assert (c["refused"], c["total"]) == (2, 1), c
    assert d.stop() == 0, d.log()


@case
def proxy_protocol_alone_warns():
    d, _ = start()
    assert "acceptd: " + WARN_ANYONE in d.lines, d.log()
    assert d.stop() == 0
    # Several --proxy-from networks; a CIDR; IPv6 too.
    listen = ["127.0.0.1:0"] + (["[::1]:0"] if has_ipv6() else [])
    d, addrs = start(["--proxy-from", "10.0.0.0/8", "--proxy-from", "127.0.0.0/30",
                      "--proxy-from", "::1"], listen=listen)
    addr = addrs[0]
    assert "any client" not in d.log(), d.log()
    for src in ("127.0.0.1", "127.0.0.3"):
        _, env, _ = request(addr, v1(), bind=(src, 0))
        assert env.get("TCPREMOTEIP") == "192.0.2.7", env
    if len(addrs) > 1:
        _, env, _ = request(addrs[1], v1(src="192.0.2.8"))
        assert env.get("TCPREMOTEIP") == "192.0.2.8", env
    with dial(addr, bind=("127.0.0.4", 0)) as s:
        s.sendall(v1())
        closed_by_peer(s, 5)
    d.wait_line(r"127\.0\.0\.4:\d+: not in --proxy-from; closed$")
    assert d.stop() == 0, d.log()


# --- 6. the claimed address is what the ACL, -C, --rate and the log see ------

@case
def deny_sees_the_claimed_address():
    d, (addr,) = start(["--deny", "192.0.2.0/24"])
    with dial(addr) as s:
        s.sendall(v1("TCP4", "192.0.2.7", "198.51.100.1", 7777, 80) + b"x")
        half_close(s)
        closed_by_peer(s, 5)
    d.wait_line(r"^acceptd: 192\.0\.2\.7:7777: denied by --deny 192\.0\.2\.0/24; closed$")
    # An IPv4-mapped claim (what a dual-stack proxy sends for IPv4
    # clients) is the IPv4 address, for the ACL as for the handler.
    with dial(addr) as s:
        s.sendall(v1("TCP6", "::ffff:192.0.2.8", "::ffff:198.51.100.1", 7779, 80))
        half_close(s)
        closed_by_peer(s, 5)
    d.wait_line(r"^acceptd: 192\.0\.2\.8:7779: denied by --deny 192\.0\.2\.0/24; closed$")
    _, env, _ = request(addr, v2(fam="inet6", src="::ffff:198.51.100.8",
                                 dst="::ffff:198.51.100.9", sport=7780, dport=80))
    check_env(env, ("198.51.100.8", 7780), ("198.51.100.9", 80))
    # The real 127.0.0.1 is not denied: another claim is served.
    _, env, echoed = request(addr, v1("TCP4", "198.51.100.7", "198.51.100.1", 7778, 80) + b"y")
    assert env.get("TCPREMOTEIP") == "198.51.100.7" and echoed == b"y", env
    c = counters(d)
    assert (c["refused"], c["total"]) == (2, 2), c
    assert d.stop() == 0, d.log()
    # And the other way round: only the claimed network is allowed in,
    # though the real peer (127.0.0.1) would be denied.
    d, (addr,) = start(["--allow", "192.0.2.0/24", "--deny", "all"])
    _, env, _ = request(addr, v1("TCP4", "192.0.2.8", "198.51.100.1", 8888, 80))
    assert env.get("TCPREMOTEIP") == "192.0.2.8", env
    # UNKNOWN keeps 127.0.0.1, which --deny all refuses.
    with dial(addr) as s:
        me = s.getsockname()[1]
        s.sendall(b"PROXY UNKNOWN\r\n")
        half_close(s)
        closed_by_peer(s, 5)
    d.wait_line(r"^acceptd: 127\.0\.0\.1:%d: denied by --deny all; closed$" % me)
    assert d.stop() == 0, d.log()


@case
def max_per_source_counts_claimed_addresses():
    d, (addr,) = start(["-C", "1"])
    a = dial(addr)
    with a:
        a.sendall(v1("TCP4", "192.0.2.70", "198.51.100.1", 7001, 80))
        # Read the report (the handler then waits in cat: a stays open).
        head = b""
        while not head.endswith(b"\nEND\n"):
            chunk = a.recv(4096)
            assert chunk, "no report: %r" % head
            head += chunk
        a_env, _ = served(head)
        assert a_env.get("TCPREMOTEIP") == "192.0.2.70" and a_env["TCPCONNNUM"] == "1", a_env
        # Same claimed address, same real one: over -C 1.
        with dial(addr) as s:
            s.sendall(v1("TCP4", "192.0.2.70", "198.51.100.1", 7002, 80))
            half_close(s)
            closed_by_peer(s, 5)
        d.wait_line(r"^acceptd: 192\.0\.2\.70:7002: source already holds --max-per-source 1; "
                    r"closed$")
        # Another claimed address from the same real 127.0.0.1: served.
        _, env, echoed = request(addr, v1("TCP4", "192.0.2.71", "198.51.100.1", 7003, 80)
                                 + b"other")
        assert env.get("TCPREMOTEIP") == "192.0.2.71" and env["TCPCONNNUM"] == "1", env
        assert echoed == b"other"
        # UNKNOWN counts as the real 127.0.0.1, which holds nothing.
        with dial(addr) as s:
            env, _ = served(transfer(s, [b"PROXY UNKNOWN\r\n"]))
        assert env.get("TCPREMOTEIP") == "127.0.0.1" and env["TCPCONNNUM"] == "1", env
        a.shutdown(socket.SHUT_WR)
        read_to_eof(a)
    d.wait_line(r"end 192\.0\.2\.70:7001 pid \d+ status 0")
    # Its slot is free again.
    _, env, _ = request(addr, v1("TCP4", "192.0.2.70", "198.51.100.1", 7004, 80))
    assert env.get("TCPREMOTEPORT") == "7004" and env["TCPCONNNUM"] == "1", env
    c = counters(d)
    assert (c["refused"], c["total"]) == (1, 4), c
    assert d.stop() == 0, d.log()


@case
def connnum_and_rate_count_claimed_addresses():
    d, (addr,) = start(["--rate", "2/60"])
    held = []
    with closing_all(held):
        for k in range(2):
            s = dial(addr)
            held.append(s)
            s.sendall(v1("TCP4", "192.0.2.80", "198.51.100.1", 8000 + k, 80))
            head = b""
            while not head.endswith(b"\nEND\n"):
                chunk = s.recv(4096)
                assert chunk, head
                head += chunk
            env, _ = served(head)
            assert env["TCPCONNNUM"] == str(k + 1), env
        # A third from 192.0.2.80 within the minute: over the rate.
        with dial(addr) as s:
            s.sendall(v1("TCP4", "192.0.2.80", "198.51.100.1", 8009, 80))
            half_close(s)
            closed_by_peer(s, 5)
        d.wait_line(r"^acceptd: 192\.0\.2\.80:8009: over --rate 2/60; closed$")
        # Another claimed source has a bucket of its own.
        _, env, _ = request(addr, v1("TCP4", "192.0.2.81", "198.51.100.1", 8100, 80))
        assert env.get("TCPREMOTEIP") == "192.0.2.81" and env["TCPCONNNUM"] == "1", env
    assert d.stop() == 0, d.log()


# --- 7. the worker pool ----------------------------------------------------------

@case
def pool_builtin_echo_strips_the_header():
    d = Daemon(["-v", "--proxy-protocol", "-b", "echo", "-w", "2", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    data = ALL_BYTES * 400 + v1() + b"\r\n"
    for hdr in (v1("TCP4", "192.0.2.90", "198.51.100.90", 9090, 7), v2(crc="last"),
                b"PROXY UNKNOWN\r\n", v2(cmd=0, fam="unspec")):
        with dial(addr) as s:
            got = transfer(s, [hdr, data[:100], data[100:]], gap=0.01)
        assert got == data, "echo after %r: %d bytes, want %d" % (hdr[:16], len(got), len(data))
    d.wait_line(r"connection 192\.0\.2\.90:9090 on \S+ worker pid \d+$")
    # A bad header never reaches a worker.
    with dial(addr) as s:
        s.sendall(b"HELO example.org\r\n")
        closed_by_peer(s, 5)
    d.wait_line(r"bad PROXY header: not a PROXY header")
    c = counters(d)
    assert (c["total"], c["refused"]) == (4, 1), c
    assert d.stop() == 0, d.log()


def need_workers():
    if not C_WORKER or not os.path.exists(C_WORKER):
        raise Skip("ACCEPTD_C_WORKER not built (run through make check)")
    if not PY_WORKER:
        raise Skip("ACCEPTD_PY_WORKER not set (run through make check)")


@case
def example_workers_get_claimed_addresses():
    need_workers()
    for argv in ([sys.executable, PY_WORKER], [C_WORKER]):
        d = Daemon(["-v", "--proxy-protocol", "--fd-passing", "-w", "1", "-l", "127.0.0.1:0",
                    "--"] + argv)
        addr, = d.listening()
        with dial(addr) as s:
            out = transfer(s, [v1("TCP4", "192.0.2.91", "198.51.100.91", 9191, 91)
                               + ALL_BYTES * 8])
        m = re.match(WORKER_LINE.encode(), out)
        assert m, "%s: first line %r" % (argv[-1], out[:120])
        assert m.group(2, 3, 4) == (b"tcp", b"192.0.2.91", b"9191"), m.groups()
        assert out[m.end():] == ALL_BYTES * 8, out[m.end():][:80]
        with dial(addr) as s:
            remote, _ = real_addrs(s)
            out = transfer(s, [v2(cmd=0, fam="unspec") + b"local"])
        m = re.match(WORKER_LINE.encode(), out)
        assert m and m.group(3, 4) == (b"127.0.0.1", str(remote[1]).encode()), out
        assert out[m.end():] == b"local", out
        assert d.stop() == 0, d.log()


@case
def header_completing_while_every_worker_is_busy():
    """-w 1 with a one-connection worker: A is accepted, B's header comes
    first and takes the worker; A's header then completes while the worker
    is busy.  A must wait (not be closed by the header deadline) and be
    served, with its claimed address, once B is done."""
    need_workers()
    d = Daemon(["-v", "--proxy-protocol", "--fd-passing", "-w", "1", "-l", "127.0.0.1:0",
                "--", sys.executable, PY_WORKER])
    addr, = d.listening()
    d.wait_line(r"worker 0 pid \d+ ready$")
    port = parse_addr(addr)[1][1]
    a = dial(addr)
    b = dial(addr)
    with a, b:
        t_a = time.monotonic()
        wait_until(lambda: held_by(d.pid, port, a.getsockname()[1]), 5, "A accepted")
        b.sendall(v1("TCP4", "192.0.2.92", "198.51.100.1", 9292, 80) + b"bee")
        m = re.match(WORKER_LINE, read_line(b))
        assert m and m.group(3) == "192.0.2.92", m
        assert recv_exact(b, 3) == b"bee"
        a.sendall(v1("TCP4", "192.0.2.93", "198.51.100.1", 9393, 80) + b"ay")
        # Past A's 3 s header deadline, still waiting for the worker.
        assert silent_for(a, max(0.5, t_a + 3.6 - time.monotonic()))
        assert "192.0.2.93" not in d.log(), d.log()
        b.close()
        m = re.match(WORKER_LINE, read_line(a))
        assert m and m.group(3, 4) == ("192.0.2.93", "9393"), m
        assert recv_exact(a, 2) == b"ay"
        a.sendall(b"more")
        assert recv_exact(a, 4) == b"more"
    c = wait_counters(d, total=2, refused=0)
    assert c["failed"] == 0, c
    assert d.stop() == 0, d.log()


# --- 8. single connections -------------------------------------------------------

def need_ssa():
    if not SSA:
        raise Skip("systemd-socket-activate not installed")


def ssa(ssa_args, acceptd_args):
    return Daemon(acceptd_args, argv0=[SSA] + list(ssa_args) + ["--", ACCEPTD],
                  tree="-a" in ssa_args)


@case
def accept_yes_parses_the_header():
    need_ssa()
    port = free_port()
    d = ssa(["-a", "-l", "127.0.0.1:%d" % port],
            ["-v", "--proxy-protocol", "--", "/bin/sh", PROXY_ENV, "7"])
    d.wait_line(r"Listening on 127\.0\.0\.1:%d as 3\." % port)
    payload = ALL_BYTES * 100
    for hdr, remote, local in (
            (v1("TCP4", "192.0.2.100", "198.51.100.100", 10000, 100),
             ("192.0.2.100", 10000), ("198.51.100.100", 100)),
            (v2(fam="inet6", src="2001:db8::100", dst="2001:db8::101", sport=10001,
                dport=101, crc="last"),
             ("2001:db8::100", 10001), ("2001:db8::101", 101))):
        mark = len(d.lines)
        _, env, echoed = request(("127.0.0.1:%d" % port), [hdr, payload[:10], payload[10:]],
                                 gap=0.02)
        check_env(env, remote, local, listener="127.0.0.1:%d" % port)
        assert echoed == payload, len(echoed)
        m = d.wait_line(r"Child %s died with code (\d+)" % env["PPID"], start=mark)
        assert m.group(1) == "7", "acceptd exited %s, want the handler's 7" % m.group(1)
    # A bad header: closed at once, no handler, acceptd exits.
    mark = len(d.lines)
    with dial("127.0.0.1:%d" % port) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert closed_by_peer(s, 5) < 1.5
    m = d.wait_line(r"Child (\d+) died with code (\d+)", start=mark)
    d.wait_line(r"bad PROXY header: not a PROXY header", start=mark)
    # A refusal is not a failure of the service (acceptd(8), EXIT STATUS).
    assert m.group(2) == "0", "exit %s after a bad header:\n%s" % (m.group(2), d.log())
    # Nothing sent at all: closed at the 3 s deadline, then acceptd exits.
    mark = len(d.lines)
    with dial("127.0.0.1:%d" % port) as s:
        took = closed_by_peer(s, 6)
    assert 2.0 <= took <= 4.0, "closed after %.2f s" % took
    m = d.wait_line(r"Child (\d+) died with code (\d+)", start=mark, timeout=5)
    d.wait_line(r"no complete PROXY header within 3 s", start=mark)
    assert m.group(2) == "0", "exit %s after the header deadline:\n%s" % (m.group(2),
                                                                         d.log())
    assert "END" not in d.log()


@case
def inetd_style_connection_on_fd0():
    need_ssa()
    port = free_port()
    d = ssa(["--inetd", "-a", "-l", "127.0.0.1:%d" % port],
            ["-v", "--proxy-protocol", "--", "/bin/sh", PROXY_ENV])
    d.wait_line(r"Listening on 127\.0\.0\.1:%d as 3\." % port)
    mark = len(d.lines)
    _, env, echoed = request("127.0.0.1:%d" % port,
                             v1("TCP4", "192.0.2.110", "198.51.100.110", 11000, 110)
                             + b"on fd 0\r\n")
    check_env(env, ("192.0.2.110", 11000), ("198.51.100.110", 110))
    assert echoed == b"on fd 0\r\n", echoed
    m = d.wait_line(r"Child %s died with code (\d+)" % env["PPID"], start=mark)
    assert m.group(1) == "0", d.log()
    # A bad header on fd 0: refused, and a refusal exits 0 here too.
    mark = len(d.lines)
    with dial("127.0.0.1:%d" % port) as s:
        s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        assert closed_by_peer(s, 5) < 1.5
    m = d.wait_line(r"Child (\d+) died with code (\d+)", start=mark)
    d.wait_line(r"bad PROXY header: not a PROXY header", start=mark)
    assert m.group(2) == "0", "exit %s after a bad header:\n%s" % (m.group(2), d.log())


@case
def accept_yes_builtin_echo():
    """One inherited connection served by the pool's single worker."""
    need_ssa()
    port = free_port()
    d = ssa(["-a", "-l", "127.0.0.1:%d" % port], ["-v", "--proxy-protocol", "-b", "echo"])
    d.wait_line(r"Listening on 127\.0\.0\.1:%d as 3\." % port)
    for n, hdr in enumerate((v1("TCP4", "192.0.2.105", "198.51.100.1", 10500, 7),
                             v2(crc="last"), b"PROXY UNKNOWN\r\n")):
        mark = len(d.lines)
        data = b"echo %d\r\n" % n + ALL_BYTES * 50
        with dial("127.0.0.1:%d" % port) as s:
            got = transfer(s, [hdr, data], gap=0.02)
        assert got == data, (hdr, len(got))
        m = d.wait_line(r"Child (\d+) died with code (\d+)", start=mark)
        assert m.group(2) == "0", d.log()
    d.wait_line(r"connection 192\.0\.2\.105:10500 on \S+ worker pid \d+$")


def start_xinetd(top, port, server_args):
    conf = os.path.join(top, "xinetd.conf")
    svclog = os.path.join(top, "service.log")
    with open(conf, "w") as f:
        f.write("""defaults
{
	log_type = FILE %s
	log_on_success = PID HOST EXIT
	log_on_failure = HOST
}

service acceptd-proxy-test
{
	type = UNLISTED
	port = %d
	bind = 127.0.0.1
	socket_type = stream
	protocol = tcp
	wait = no
	user = root
	server = %s
	server_args = %s
}
""" % (svclog, port, ACCEPTD, server_args))
    d = Daemon([], argv0=[XINETD, "-dontfork", "-stayalive", "-f", conf,
                          "-pidfile", os.path.join(top, "xinetd.pid"),
                          "-filelog", os.path.join(top, "xinetd.log")], tree=True)
    wait_until(lambda: listening_on(port), 10, "xinetd to listen on %d" % port)
    return d, svclog


def xinetd_exits(svclog, other_than=None):
    """(pid, status) of xinetd's first EXIT record of an acceptd pid other
    than other_than, waiting for it."""
    rx = re.compile(r"EXIT: acceptd-proxy-test status=(-?\d+) pid=(\d+)")

    def find():
        with open(svclog) as f:
            text = f.read()
        hits = [(int(p), int(st)) for st, p in rx.findall(text) if int(p) != other_than]
        return hits[0] if hits else None
    return wait_until(find, 10, "xinetd's EXIT record")


@case
def xinetd_nowait():
    if not XINETD:
        raise Skip("xinetd not installed")
    if os.geteuid() != 0:
        raise Skip("needs root (xinetd runs the service as root)")
    top = tmpdir()
    port = free_port()
    _, svclog = start_xinetd(top, port, "--proxy-protocol -v -- /bin/sh %s 3" % PROXY_ENV)
    _, env, echoed = request("127.0.0.1:%d" % port,
                             v2(src="192.0.2.120", dst="198.51.100.120", sport=12000,
                                dport=120, crc="last") + ALL_BYTES)
    check_env(env, ("192.0.2.120", 12000), ("198.51.100.120", 120))
    assert echoed == ALL_BYTES, echoed
    acceptd = int(env["PPID"])
    assert xinetd_exits(svclog) == (acceptd, 3), "not the handler's status"
    # A bad header: closed, acceptd exits (logs go to syslog here).
    with dial("127.0.0.1:%d" % port) as s:
        s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        assert closed_by_peer(s, 5) < 1.5
    pid, status = xinetd_exits(svclog, other_than=acceptd)
    assert status == 0, "acceptd pid %d exits %d after a bad PROXY header" % (pid, status)


# --- 9. unix listeners ---------------------------------------------------------

@case
def unix_listener():
    top = tmpdir()
    path = os.path.join(top, "sock")
    # --proxy-from does not apply to unix clients (the file's mode does).
    d, (addr,) = start(["--proxy-from", "192.0.2.1"], listen=["unix:" + path])
    assert addr == "unix:" + path, addr
    _, env, echoed = request(addr, v1("TCP4", "192.0.2.130", "198.51.100.130", 13000, 130)
                             + b"via unix")
    check_env(env, ("192.0.2.130", 13000), ("198.51.100.130", 130), listener=addr)
    assert echoed == b"via unix", echoed
    for hdr in (b"PROXY UNKNOWN\r\n", v2(cmd=0, fam="unspec"), v2(cmd=1, fam="unix")):
        _, env, echoed = request(addr, hdr + b"still unix")
        assert env.get("PROTO") == "UNIX", (hdr, env)
        assert env.get("UNIXREMOTEEUID") == str(os.getuid()), env
        assert env.get("UNIXREMOTEEGID") == str(os.getgid()), env
        assert env.get("UNIXREMOTEPID") == str(os.getpid()), env
        assert "TCPREMOTEIP" not in env and "REMOTE_ADDR" not in env, env
        assert env.get("ACCEPTD_LISTENER") == addr, env
        assert echoed == b"still unix", echoed
    with dial(addr) as s:
        s.sendall(b"\x16\x03\x01\x02\x00")          # a TLS hello
        assert closed_by_peer(s, 5) < 1.5
    d.wait_line(r"bad PROXY header: not a PROXY header \(got \"\\x16\\x03\\x01\\x02\\x00\"\)")
    assert d.stop() == 0, d.log()


# --- stopping with headers still being read ------------------------------------

@case
def sigterm_closes_connections_still_reading():
    d, (addr,) = start()
    port = parse_addr(addr)[1][1]
    waiting = [dial(addr) for _ in range(3)]
    with closing_all(waiting):
        waiting[0].sendall(b"PROXY TCP4 192.0.2.1")
        for s in waiting:
            wait_until(lambda: held_by(d.pid, port, s.getsockname()[1]), 5, "accepted")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        for s in waiting:
            closed_by_peer(s, 5)
        assert d.wait(5) == 0, d.log()
        assert time.monotonic() - t0 < 2, "not closed at once"
    d.wait_line(r"stopping: closed 3 connection\(s\) still before their PROXY header")


@case
def sigterm_and_header_bytes_in_one_wakeup():
    """SIGTERM and more header bytes for a connection that is being read
    arrive while acceptd is not running (here: stopped), so one epoll_wait
    returns the signalfd before that connection.  Stopping closes and
    frees the connection's record; the event after it in the same batch
    must not touch it."""
    d, (addr,) = start()
    port = parse_addr(addr)[1][1]
    s = dial(addr)
    with s:
        s.sendall(b"PROXY TCP4 192.0.2.1")
        wait_until(lambda: held_by(d.pid, port, s.getsockname()[1]), 5, "accepted")
        os.kill(d.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: proc_stat(d.pid)[0] == "T", 5, "acceptd to stop")
            os.kill(d.pid, signal.SIGTERM)      # queued: the signalfd is ready first
            s.sendall(b"98.51.100.1 ")         # then this connection
        finally:
            os.kill(d.pid, signal.SIGCONT)
        closed_by_peer(s, 5)
        rc = d.wait(10)
    log = d.log()
    assert rc == 0, "acceptd exited %d:\n%s" % (rc, log)
    assert "stopping: closed 1 connection(s) still before their PROXY header" in log, log
    assert not re.search(r"Bad file descriptor|refused \d{5,}|AddressSanitizer", log), log
    m = re.search(r"stopped: active 0 total 0 refused (\d+) failed 0", log)
    assert m and m.group(1) == "0", log



def as_uid(uid, gid, abstract, data):
    """Connect to the abstract unix socket as uid:gid, send data, half-close,
    read to end of file (or a reset or broken pipe: a refusal):
    what a local user other than us gets back."""
    client = ("import socket,sys\n"
              "s=socket.socket(socket.AF_UNIX);s.settimeout(10)\n"
              "s.connect(sys.argv[1].encode().replace(b'@',b'\\0',1))\n"
              "try: s.sendall(sys.stdin.buffer.read());s.shutdown(socket.SHUT_WR)\n"
              "except (BrokenPipeError, ConnectionResetError): pass\n"
              "o=b''\n"
              "while True:\n"
              " try: b=s.recv(65536)\n"
              " except ConnectionResetError: break\n"
              " if not b: break\n"
              " o+=b\n"
              "sys.stdout.buffer.write(o)\n")
    # Debian's python3, which any user may run (the tests' own may live
    # under /root).
    r = subprocess.run(["/usr/bin/python3", "-c", client, abstract], input=data,
                       capture_output=True, user=uid, group=gid, extra_groups=[], timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


@case
def abstract_listener_trusts_only_whom_proxy_from_names():
    """An abstract socket has no file and no mode: any local user can
    connect and claim any address.  So there a PROXY header is taken only
    from a user or group --proxy-from names (unix:uid=N, unix:gid=N)."""
    if os.geteuid() != 0:
        raise Skip("needs root to connect as another user")
    import pwd
    nobody = pwd.getpwnam("nobody")
    name = "@acceptd-proxy-test-%d" % os.getpid()
    forged = v1("TCP4", "1.2.3.4", "198.51.100.1", 4000, 80) + b"forged"
    # Nobody named: nobody trusted, not even a user the file mode would
    # have let in (there is no file).
    d, (addr,) = start([], listen=["unix:" + name])
    d.wait_line(r"unix:@acceptd-proxy-test-\d+: an abstract socket, which anyone on the host "
                r"can reach")
    assert as_uid(nobody.pw_uid, nobody.pw_gid, name, forged) == b"", d.log()
    d.wait_line(r"unix:uid=%d: not in --proxy-from; closed" % nobody.pw_uid)
    assert as_uid(0, 0, name, forged) == b""
    d.stop()
    for rule in ("unix:uid=%d" % nobody.pw_uid, "unix:gid=%d" % nobody.pw_gid):
        d, (addr,) = start(["--proxy-from", rule], listen=["unix:" + name])
        env, echoed = served(as_uid(nobody.pw_uid, nobody.pw_gid, name, forged))
        assert env.get("TCPREMOTEIP") == "1.2.3.4" and echoed == b"forged", (rule, env)
        mark = len(d.lines)
        assert as_uid(0, 0, name, forged) == b"", (rule, d.log())
        d.wait_line(r"unix:uid=0: not in --proxy-from; closed", start=mark)
        assert d.stop() == 0, d.log()


@case
def proxy_from_unix_forms_checked():
    for bad, why in (("unix:uid=", "decimal"), ("unix:uid=-1", "decimal"),
                     ("unix:user=0", "uid=N or gid=N"),
                     ("unix:gid=4294967295", "below"), ("unix:uid=01", "decimal")):
        r = subprocess.run([ACCEPTD, "--proxy-protocol", "--proxy-from", bad],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and why in r.stderr, (bad, r.returncode, r.stderr)
    r = subprocess.run([ACCEPTD, "--allow", "unix:uid=0"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "--proxy-from only" in r.stderr, r.stderr

# --- 10. a real HAProxy in front ------------------------------------------------

@case
def haproxy_in_front():
    if not HAPROXY:
        raise Skip("haproxy not installed (Debian package haproxy)")
    d, (addr,) = start()
    aport = parse_addr(addr)[1][1]
    top = tmpdir()
    six = has_ipv6()
    fronts = [("v1", socket.AF_INET, "send-proxy"),
              ("v2", socket.AF_INET, "send-proxy-v2"),
              ("v2crc", socket.AF_INET, "send-proxy-v2 proxy-v2-options crc32c"),
              ("v2tlv", socket.AF_INET, "send-proxy-v2 proxy-v2-options crc32c,unique-id")]
    if six:
        fronts += [("v1six", socket.AF_INET6, "send-proxy"),
                   ("v2six", socket.AF_INET6, "send-proxy-v2 proxy-v2-options crc32c"),
                   # An IPv6 socket taking IPv4 clients, as a dual-stack
                   # frontend does: HAProxy sees ::ffff:127.0.0.3, and
                   # acceptd must show plain 127.0.0.3.
                   ("v1mapped", None, "send-proxy"),
                   ("v2mapped", None, "send-proxy-v2")]
    ports = {}
    conf = ["global", "    nbthread 1", "    maxconn 100",
            "defaults", "    mode tcp", "    timeout connect 5s",
            "    timeout client 20s", "    timeout server 20s"]
    for name, fam, opts in fronts:
        ports[name] = free_port(fam or socket.AF_INET)
        bind = {socket.AF_INET: "127.0.0.1:%d", socket.AF_INET6: "[::1]:%d",
                None: "[::ffff:127.0.0.1]:%d v4v6"}[fam] % ports[name]
        conf += ["listen %s" % name, "    bind %s" % bind]
        if "unique-id" in opts:
            conf += ["    unique-id-format %[uuid]"]
        conf += ["    server s1 127.0.0.1:%d %s" % (aport, opts)]
    path = os.path.join(top, "haproxy.cfg")
    with open(path, "w") as f:
        f.write("\n".join(conf) + "\n")
    h = Daemon([], argv0=[HAPROXY, "-db", "-f", path])
    with h:
        for name, fam, _ in fronts:
            table = socket.AF_INET if fam == socket.AF_INET else socket.AF_INET6
            wait_until(lambda: listening_on(ports[name], table) or h.proc.poll() is not None,
                       10, "haproxy to listen")
            assert h.proc.poll() is None, "haproxy exited:\n" + h.log()
        payload = (ALL_BYTES * 1024)[:200000] + b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"
        for name, fam, _ in fronts:
            src = "::1" if fam == socket.AF_INET6 else "127.0.0.3"
            dst = "::1" if fam == socket.AF_INET6 else "127.0.0.1"
            fam = fam or socket.AF_INET
            me, env, echoed = request((fam, (dst, ports[name])),
                                      [payload[:1000], payload[1000:]],
                                      bind=(src, 0))
            check_env(env, (src, me[1]), (dst, ports[name]), listener=addr)
            assert echoed == payload, "%s: %d bytes back, want %d" % (
                name, len(echoed), len(payload))
            who = src if fam == socket.AF_INET else "[%s]" % src
            d.wait_line(r"end %s:%d pid \d+ status 0" % (re.escape(who), me[1]))
        assert "bad PROXY header" not in d.log(), d.log()
        c = counters(d)
        assert (c["total"], c["refused"], c["failed"]) == (len(fronts), 0, 0), c
    assert d.stop() == 0, d.log()


run()
