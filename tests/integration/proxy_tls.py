"""proxy_tls.py - PROXY v2 TLVs as the handler's PROXY_* variables, end to
end: a real HAProxy terminating TLS in front of acceptd --proxy-protocol.

HAProxy's TLS front ends use a server certificate and a client CA made
here with openssl (a client certificate signed by that CA, and a
self-signed one it cannot verify); its servers send PROXY v2 with the
SSL TLV and every sub-TLV HAProxy 2.6 has (send-proxy-v2-ssl-cn,
proxy-v2-options ssl,cert-cn,ssl-cipher,cert-sig,cert-key,authority,
unique-id,crc32c; the ALPN TLV comes whenever ALPN was agreed).  A Python
ssl client with SNI, ALPN and a client certificate connects; the handler
prints its PROXY_* variables, which must be what the client itself saw
of the TLS session (version, cipher, the CN it presented, the name it
asked for) and what HAProxy was told to send.  Then headers forged here,
from a peer in --proxy-from: a value that is not printable ASCII or too
long is left out and logged, the others stay; a LOCAL header gives
nothing.  And a peer outside --proxy-from, or any client of a listener
without --proxy-protocol, cannot set a single PROXY_* variable.

Every socket is on loopback.  Readiness: acceptd's log, and
/proc/net/tcp for HAProxy's listeners; no sleeps."""
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (Daemon, Skip, case, counters, free_port, run, tmpdir,  # noqa: E402
                          wait_until, write_script)

HAPROXY = shutil.which("haproxy")
OPENSSL = shutil.which("openssl")
SNI = "tls.example.test"
CLIENT_CN = "acceptd test client"
ROGUE_CN = "self-signed client"

# The handler: its PROXY_* variables (sorted), the client address it was
# given, END, then the connection echoed back.
HANDLER = """#!/bin/sh
env | grep '^PROXY_' | sort
printf 'TCPREMOTEIP=%s\\nTCPREMOTEPORT=%s\\nEND\\n' "$TCPREMOTEIP" "$TCPREMOTEPORT"
exec cat
"""

PROXY_NAMES = ("PROXY_ALPN", "PROXY_AUTHORITY", "PROXY_UNIQUE_ID", "PROXY_SSL",
               "PROXY_SSL_CLIENT_CERT", "PROXY_SSL_VERIFY", "PROXY_SSL_VERSION",
               "PROXY_SSL_CN", "PROXY_SSL_CIPHER", "PROXY_SSL_SIG_ALG", "PROXY_SSL_KEY_ALG")


# --- PROXY v2 headers, built here ---------------------------------------------

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


def v2(tlvs, cmd=1, src="192.0.2.7", dst="198.51.100.1", sport=40000, dport=443):
    body = (socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
            + tlvs)
    return V2_SIG + bytes([0x20 | cmd, 0x11]) + struct.pack("!H", len(body)) + body


def ssl_tlv(client, verify, subs):
    return tlv(0x20, struct.pack("!BI", client, verify) + b"".join(tlv(t, v) for t, v in subs))


# --- the pieces ----------------------------------------------------------------

def openssl(*args, cwd):
    r = subprocess.run([OPENSSL] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr)


def make_pki(top):
    """A CA, a server certificate (RSA 2048, SHA-256: what HAProxy reports
    as the front end's SIG_ALG and KEY_ALG), a client certificate the CA
    signed, and a self-signed one it did not."""
    if not OPENSSL:
        raise Skip("openssl not installed")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-subj", "/CN=acceptd test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=top)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-subj", "/CN=" + SNI, "-keyout", "srv.key", "-out", "srv.crt", cwd=top)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", "/CN=" + CLIENT_CN,
            "-keyout", "client.key", "-out", "client.csr", cwd=top)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-sha256", "-out", "client.crt", cwd=top)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-subj", "/CN=" + ROGUE_CN, "-keyout", "rogue.key", "-out", "rogue.crt", cwd=top)
    with open(os.path.join(top, "srv.pem"), "w") as out:
        for part in ("srv.crt", "srv.key"):
            with open(os.path.join(top, part)) as f:
                out.write(f.read())


def handler(top):
    return write_script(top, "env.sh", HANDLER)


def start(args=(), proxy=True, top=None):
    """acceptd -v [--proxy-protocol] on 127.0.0.1:0 with the handler."""
    cmd = ["-v"] + (["--proxy-protocol"] if proxy else []) + ["-l", "127.0.0.1:0"]
    d = Daemon(cmd + list(args) + ["--", "/bin/sh", handler(top or tmpdir())])
    (addr,) = d.listening(1)
    return d, int(addr.rsplit(":", 1)[1])


def served(out):
    """The handler's report -> (PROXY_* and TCPREMOTE* dict, echoed bytes)."""
    head, sep, rest = out.partition(b"\nEND\n")
    assert sep, "handler output incomplete: %r" % out[:400]
    return dict(ln.split("=", 1) for ln in head.decode().splitlines()), rest


def read_to_eof(s):
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def raw_request(port, data, bind=None):
    with socket.socket() as s:
        s.settimeout(10)
        if bind:
            s.bind(bind)
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)


def closed_unserved(port, data, bind=None):
    """True when acceptd closes the connection without a byte of answer
    (at end of file, or with a reset: it closed with our bytes unread)."""
    try:
        return raw_request(port, data, bind) == b""
    except ConnectionResetError:
        return True


def listening_on(port):
    """True when some socket listens on this IPv4 TCP port (/proc/net/tcp:
    a readiness check that opens no connection)."""
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            col = row.split()
            if col[3] == "0A" and int(col[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


SEND_V2 = ("send-proxy-v2 send-proxy-v2-ssl send-proxy-v2-ssl-cn proxy-v2-options "
           "ssl,cert-cn,ssl-cipher,cert-sig,cert-key,authority,unique-id,crc32c")


def haproxy(top, aport, fronts):
    """HAProxy with one listen section per (name, bind options) in fronts,
    each relaying to acceptd on aport with SEND_V2; its unique ID is
    'tls-' and the client's port.  Returns (Daemon, {name: port})."""
    if not HAPROXY:
        raise Skip("haproxy not installed (Debian package haproxy)")
    ports = {}
    conf = ["global", "    nbthread 1", "    maxconn 100",
            "defaults", "    mode tcp", "    timeout connect 5s",
            "    timeout client 20s", "    timeout server 20s"]
    for name, bind in fronts:
        ports[name] = free_port()
        conf += ["listen %s" % name, "    bind 127.0.0.1:%d %s" % (ports[name], bind),
                 "    unique-id-format tls-%cp",
                 "    server s1 127.0.0.1:%d %s" % (aport, SEND_V2)]
    path = os.path.join(top, "haproxy.cfg")
    with open(path, "w") as f:
        f.write("\n".join(conf) + "\n")
    h = Daemon([], argv0=[HAPROXY, "-db", "-f", path])
    for name in ports:
        wait_until(lambda: listening_on(ports[name]) or h.proc.poll() is not None,
                   10, "haproxy to listen")
        assert h.proc.poll() is None, "haproxy exited:\n" + h.log()
    return h, ports


def tls_request(top, port, cert=None, sni=SNI, alpn=("h2",), payload=b"after the handshake"):
    """A TLS client through HAProxy; returns (its own port, what it saw of
    the session, the handler's report, the bytes echoed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(top, "srv.crt"))
    ctx.check_hostname = sni is not None
    if not sni:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(os.path.join(top, cert + ".crt"), os.path.join(top, cert + ".key"))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        me = raw.getsockname()[1]
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            seen = {"version": s.version(), "cipher": s.cipher()[0],
                    "alpn": s.selected_alpn_protocol()}
            s.sendall(payload)
            # TLS has no half-close: read up to the echo, then close.
            out = b""
            while not out.endswith(b"\nEND\n" + payload):
                b = s.recv(65536)
                assert b, "connection ended early: %r" % out
                out += b
    env, echoed = served(out)
    assert echoed == payload, echoed
    return me, seen, env


def proxy_vars(env):
    return {k: v for k, v in env.items() if k.startswith("PROXY_")}


# --- 1. a real HAProxy terminating TLS ------------------------------------------

def tls_setup():
    top = tmpdir()
    make_pki(top)
    d, aport = start(top=top)
    ca = os.path.join(top, "ca.pem")
    crt = os.path.join(top, "srv.pem")
    h, ports = haproxy(top, aport, [
        ("verify", "ssl crt %s alpn h2,http/1.1 verify optional ca-file %s" % (crt, ca)),
        # A certificate it cannot verify is let through, with the error.
        ("lenient", "ssl crt %s verify optional ca-file %s crt-ignore-err all "
                    "ca-ignore-err all" % (crt, ca)),
        ("plain", "")])
    return top, d, h, ports


@case
def haproxy_tls_client_certificate():
    top, d, h, ports = tls_setup()
    with h:
        me, seen, env = tls_request(top, ports["verify"], cert="client")
        assert seen["alpn"] == "h2", seen
        want = {"PROXY_ALPN": "h2", "PROXY_AUTHORITY": SNI, "PROXY_UNIQUE_ID": "tls-%d" % me,
                "PROXY_SSL": "1", "PROXY_SSL_CLIENT_CERT": "1", "PROXY_SSL_VERIFY": "0",
                "PROXY_SSL_VERSION": seen["version"], "PROXY_SSL_CN": CLIENT_CN,
                "PROXY_SSL_CIPHER": seen["cipher"], "PROXY_SSL_SIG_ALG": "RSA-SHA256",
                "PROXY_SSL_KEY_ALG": "RSA2048"}
        assert proxy_vars(env) == want, "handler saw %r, want %r" % (proxy_vars(env), want)
        assert env["TCPREMOTEIP"] == "127.0.0.1" and env["TCPREMOTEPORT"] == str(me), env
        assert "left out" not in d.log() and "bad PROXY header" not in d.log(), d.log()
    assert d.stop() == 0, d.log()


@case
def haproxy_tls_without_client_certificate():
    top, d, h, ports = tls_setup()
    with h:
        # No certificate, no ALPN, no SNI: nothing claims them, and no
        # verify number stands in for a certificate that was not there.
        me, seen, env = tls_request(top, ports["verify"], sni=None, alpn=None)
        want = {"PROXY_UNIQUE_ID": "tls-%d" % me, "PROXY_SSL": "1",
                "PROXY_SSL_CLIENT_CERT": "0", "PROXY_SSL_VERSION": seen["version"],
                "PROXY_SSL_CIPHER": seen["cipher"], "PROXY_SSL_SIG_ALG": "RSA-SHA256",
                "PROXY_SSL_KEY_ALG": "RSA2048"}
        assert proxy_vars(env) == want, "handler saw %r, want %r" % (proxy_vars(env), want)
    assert d.stop() == 0, d.log()


@case
def haproxy_tls_unverified_client_certificate():
    top, d, h, ports = tls_setup()
    with h:
        me, seen, env = tls_request(top, ports["lenient"], cert="rogue", alpn=None)
        got = proxy_vars(env)
        assert got.get("PROXY_SSL_CLIENT_CERT") == "1" and got.get("PROXY_SSL_CN") == ROGUE_CN, got
        # OpenSSL's X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, read
        # big-endian from the TLV: anything but 0, the "verified" value
        assert got.get("PROXY_SSL_VERIFY") == "18", got
        assert got["PROXY_AUTHORITY"] == SNI and "PROXY_ALPN" not in got, got
    assert d.stop() == 0, d.log()


@case
def haproxy_plain_front_end_says_no_tls():
    top, d, h, ports = tls_setup()
    with h:
        payload = b"plain text, no TLS"
        with socket.create_connection(("127.0.0.1", ports["plain"]), timeout=10) as s:
            me = s.getsockname()[1]
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            env, echoed = served(read_to_eof(s))
        assert echoed == payload, echoed
        # The SSL TLV says the client did not use TLS: that, and no more.
        want = {"PROXY_UNIQUE_ID": "tls-%d" % me, "PROXY_SSL": "0"}
        assert proxy_vars(env) == want, "handler saw %r, want %r" % (proxy_vars(env), want)
    assert d.stop() == 0, d.log()


# --- 2. headers forged by a trusted peer ------------------------------------------

@case
def forged_values_not_printable_or_too_long_are_left_out():
    d, port = start(["--proxy-from", "127.0.0.1/32"])
    cases = [
        # (TLVs, the variables the handler must see, the log line's tail)
        (tlv(0x02, b"evil\x1b[2Jname") + tlv(0x01, b"h2"), {"PROXY_ALPN": "h2"},
         r'TLV AUTHORITY left out of PROXY_AUTHORITY: not printable ASCII '
         r'\(got "evil\\x1b\[2Jname"\)$'),
        (tlv(0x05, b"u" * 129) + tlv(0x02, b"ok.example"), {"PROXY_AUTHORITY": "ok.example"},
         r'TLV UNIQUE_ID left out of PROXY_UNIQUE_ID: longer than 128 bytes '
         r'\(got "u{32}"\.\.\.\)$'),
        (ssl_tlv(0x07, 0, [(0x21, b"TLSv1.3"), (0x22, b"Jos\xc3\xa9"), (0x23, b"c\nx")]),
         {"PROXY_SSL": "1", "PROXY_SSL_CLIENT_CERT": "1", "PROXY_SSL_VERIFY": "0",
          "PROXY_SSL_VERSION": "TLSv1.3"},
         r'TLV SSL_CN left out of PROXY_SSL_CN: not printable ASCII '
         r'\(got "Jos\\xc3\\xa9"\), and 1 more$'),
    ]
    for i, (tlvs, want, logged) in enumerate(cases):
        mark = len(d.lines)
        env, echoed = served(raw_request(port, v2(tlvs, sport=41000 + i) + b"data"))
        assert echoed == b"data", echoed
        assert proxy_vars(env) == want, "case %d: handler saw %r, want %r" % (
            i, proxy_vars(env), want)
        assert env["TCPREMOTEIP"] == "192.0.2.7", env
        d.wait_line(r"^acceptd: 192\.0\.2\.7:%d via 127\.0\.0\.1:\d+: PROXY v2 " % (41000 + i)
                    + logged, start=mark)
    # LOCAL: the proxy's own connection; its TLVs set nothing.
    env, _ = served(raw_request(port, v2(tlv(0x01, b"h2") + ssl_tlv(1, 0, []), cmd=0)))
    assert proxy_vars(env) == {} and env["TCPREMOTEIP"] == "127.0.0.1", env
    c = counters(d)
    assert (c["total"], c["refused"]) == (len(cases) + 1, 0), c
    assert d.stop() == 0, d.log()


@case
def malformed_ssl_tlv_refuses_the_header():
    d, port = start(["--proxy-from", "127.0.0.1/32"])
    bad = tlv(0x20, b"\x01\0\0\0\0" + b"\x21\x00\x09" + b"TLSv1.3")   # sub-TLV overruns it
    assert closed_unserved(port, v2(bad) + b"data"), "a handler ran"
    d.wait_line(r"127\.0\.0\.1:\d+: bad PROXY header: v2: SSL sub-TLVs overrun the SSL TLV "
                r"\(got .*\); closed")
    assert d.stop() == 0, d.log()


# --- 3. nobody else can set them --------------------------------------------------

@case
def untrusted_peer_cannot_set_proxy_variables():
    forged = v2(tlv(0x02, b"forged.example") + ssl_tlv(0x07, 0, [(0x22, b"admin")])) + b"data"
    # A peer outside --proxy-from: closed before its header is read.
    d, port = start(["--proxy-from", "127.0.0.1/32"])
    assert closed_unserved(port, forged, bind=("127.0.0.3", 0)), d.log()
    d.wait_line(r"127\.0\.0\.3:\d+: not in --proxy-from; closed")
    c = counters(d)
    assert (c["total"], c["refused"]) == (0, 1), c
    assert d.stop() == 0, d.log()
    # A listener without --proxy-protocol: the header is only data.
    d, port = start(proxy=False)
    env, echoed = served(raw_request(port, forged))
    assert proxy_vars(env) == {} and echoed == forged, env
    assert d.stop() == 0, d.log()


run()
