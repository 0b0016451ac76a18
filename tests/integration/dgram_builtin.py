"""dgram_builtin.py - the built-ins over datagram sockets (issue #16): echo,
discard, chargen, daytime and time answered by pool worker 0 (wdgram.c),
no process per datagram.

  * what each answers (RFC 862-868 UDP forms): echo every size from 0 to
    65507 bytes and binary bytes exactly, a 0-byte request with a 0-byte
    answer; daytime one CRLF line; time 4 bytes since 1900; chargen 444
    bytes (six 74-byte lines, never above RFC 864's 512, whatever the
    request's size), the pattern going on from one answer to the next;
    discard nothing;
  * the per-source rate, on by default (10 per second): a flood from one
    source is cut to its burst while another source is answered in full;
    --rate and a --rules rule's rate= replace it;
  * admission: --deny and a --rules deny (its msg= never sent) drop the
    datagram, never answered;
  * where: a dual-stack udp:PORT (IPv4 and IPv6, each answer from the
    address the request went to), unix-dgram: (a named or autobound
    sender answered; an unnamed one, which has no address, not), two UDP
    sockets from LISTEN_FDS (one of them at fd 3, where the worker's
    channel goes), an IPv6 UDP socket on fd 0 (inetd);
  * resilience: worker 0 killed and restarted, a SIGHUP reload, SIGTERM.

The built-in's mixed stream and datagram unit is sources.py's, IPv4 on
fd 0 inetd.py's, wait and per-peer mode with a PROGRAM dgram.py's and
dgram_peer.py's.

Nothing here sleeps to wait for acceptd: a datagram that must get no
answer is checked after a barrier, an answer to a datagram that was
queued behind it on the same socket (one reader, worker 0, reads them in
order, and a loopback answer is in the client's queue when sendmmsg
returns), or the log line of a denied one for discard."""
import calendar
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (ACCEPTD, Daemon, Skip, case, has_ipv6, parse_addr,  # noqa: E402
                          pid_dead, private_netns, run, tmpdir, wait_until)

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
LISTEN_EXEC = os.path.join(HELPERS, "src_listen_exec.py")
RFC868_EPOCH = 2208988800       # 1900-01-01 to 1970-01-01, in seconds


# --- helpers local to this file --------------------------------------------

def builtin(name, args=(), listen=("udp:127.0.0.1:0",), **kw):
    """acceptd -b NAME -w 2 -l LISTEN... ARGS; returns it and where to
    send each listener's datagrams."""
    cmd = ["-v", "-b", name, "-w", "2"] + [w for a in listen for w in ("-l", a)] + list(args)
    d = Daemon(cmd, **kw)
    return d, [dest(n) for n in d.listening(len(listen))]


def dest(name):
    """A logged listener name -> (family, address to send to)."""
    if name.startswith("unix-dgram:"):
        return socket.AF_UNIX, name[len("unix-dgram:"):]
    assert name.startswith("udp:"), name
    fam, (host, port) = parse_addr(name[4:])
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if fam == socket.AF_INET else "::1"
    return fam, (host, port)


def client(host="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    return s


def ask(sock, to, payload=b"", timeout=10, size=1 << 17):
    """Send one datagram, return (answer, its source address)."""
    sock.sendto(payload, to)
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(size)
    except socket.timeout:
        raise AssertionError("no answer to %r... within %ss" % (payload[:40], timeout))


def pending(sock):
    """Every datagram waiting on the client's socket now (no waiting)."""
    got = []
    sock.setblocking(False)
    try:
        while True:
            got.append(sock.recv(1 << 17))
    except BlockingIOError:
        return got
    finally:
        sock.setblocking(True)


def nothing_for(sock):
    got = pending(sock)
    assert not got, "the client got %d answer(s): %r" % (len(got), [g[:60] for g in got])
    return True


def chargen_line(n):
    """RFC 864's line n (0 starts with the space): 72 characters, CRLF."""
    return bytes(32 + (n + i) % 95 for i in range(72)) + b"\r\n"


def chargen_first_line(reply):
    """Which pattern line a chargen answer starts with; checks that it
    is whole lines going on one after the other."""
    assert len(reply) % 74 == 0 and reply, "not whole lines: %d bytes" % len(reply)
    first = reply[0] - 32
    for k in range(len(reply) // 74):
        assert reply[74 * k:74 * k + 74] == chargen_line(first + k), \
            "line %d of the answer is not the pattern's %d: %r" % (k, first + k, reply)
    return first


def worker0(d, start=0):
    """The pid of worker 0 as its latest "ready" line says."""
    pid = None
    for ln in d.lines[start:]:
        m = re.search(r"worker 0 pid (\d+) ready", ln)
        if m:
            pid = int(m.group(1))
    return pid


def answered_again(to, payload, timeout=10, host="127.0.0.1"):
    """Send payload every 0.2 s until echo answers it (a restarting
    worker); returns the answer."""
    fam = to[0]
    with client(host if fam == socket.AF_INET else "::1", fam) as c:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c.sendto(payload, to[1])
            c.settimeout(0.2)
            try:
                return c.recv(1 << 16)
            except socket.timeout:
                pass
    raise AssertionError("no answer within %ss" % timeout)


def listen_exec(fds, acceptd_args):
    """acceptd with FDS as its fds 3.. and LISTEN_* set the systemd way."""
    argv0 = [sys.executable, LISTEN_EXEC] + [str(fd) for fd in fds] + ["--", ACCEPTD]
    return Daemon(acceptd_args, argv0=argv0, pass_fds=tuple(fds))


def need_ipv6():
    if not has_ipv6():
        raise Skip("no IPv6 loopback")


# --- 1. what each built-in answers -------------------------------------------

@case
def echo_answers_every_size_exactly():
    d, [(_, to)] = builtin("echo")
    payloads = [b"", b"x", bytes(range(256)) * 3 + b"\0" * 232, os.urandom(65507),
                b"\xff\xfe\0\r\n\0garbage\x80" * 7, os.urandom(1000)]
    with client() as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for p in payloads:
            got, src = ask(c, to, p)
            assert src == to, "answered from %r, sent to %r" % (src, to)
            assert got == p, "sent %d bytes, got %d back (differ at %r)" % (
                len(p), len(got), next((i for i, (a, b) in enumerate(zip(p, got)) if a != b),
                                       min(len(p), len(got))))
    # A 0-byte datagram is a request like any other (RFC 862: send back
    # what came), answered with a 0-byte datagram, not skipped.
    assert d.stop() == 0, d.log()
    assert "datagram dropped" not in d.log(), d.log()


@case
def daytime_answers_one_crlf_line_of_now():
    d, [(_, to)] = builtin("daytime", extra_env={"TZ": "UTC"})
    with client() as c:
        before = time.time()
        got, _ = ask(c, to, b"what time is it? " * 50)    # a long request: same answer
        after = time.time()
    assert got.endswith(b"\r\n") and got.count(b"\n") == 1, got
    assert len(got) < 64, got
    text = got[:-2].decode("ascii")
    m = re.fullmatch(r"(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) UTC", text)
    assert m, "not a daytime line: %r" % text
    t = calendar.timegm(time.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"))
    assert before - 2 <= t <= after + 2, "daytime says %r, now is %s" % (text, time.ctime(after))


@case
def time_answers_four_bytes_since_1900():
    d, [(_, to)] = builtin("time")
    with client() as c:
        before = time.time()
        got, _ = ask(c, to, b"")
        got2, _ = ask(c, to, b"any request at all" * 20)
        after = time.time()
    for g in (got, got2):
        assert len(g) == 4, "time answered %d bytes: %r" % (len(g), g)
        (v,) = struct.unpack("!I", g)
        assert int(before) - 2 + RFC868_EPOCH <= v <= int(after) + 2 + RFC868_EPOCH, \
            "time says %d (%s), now is %s" % (v, time.ctime(v - RFC868_EPOCH), time.ctime(after))


@case
def chargen_answers_444_bytes_and_the_pattern_goes_on():
    d, [(_, to)] = builtin("chargen")
    with client() as c:
        firsts = []
        # Whatever the request's size (RFC 864 ignores it): 444, never
        # more than 512, and never grown by a big request.
        for req in (b"", b"a", os.urandom(4000), b"x" * 60000, b""):
            got, _ = ask(c, to, req)
            assert len(got) == 444, "chargen answered %d bytes to %d, want 444 (<= 512)" % (
                len(got), len(req))
            firsts.append(chargen_first_line(got))
        assert nothing_for(c)
    # Each answer starts where the last one stopped, around the 95 lines.
    want = [(firsts[0] + 6 * k) % 95 for k in range(len(firsts))]
    assert firsts == want, "answers start at lines %r, want %r" % (firsts, want)


@case
def discard_answers_nothing():
    # The barrier: 127.0.0.9 is denied, and its "datagram dropped" line
    # is logged when worker 0 has read everything queued before it.
    d, [(_, to)] = builtin("discard", ["--deny", "127.0.0.9"])
    with client() as c, client("127.0.0.9") as barrier:
        for p in (b"", b"hello", os.urandom(1000), os.urandom(65507)):
            c.sendto(p, to)
        barrier.sendto(b"last", to)
        d.wait_line(r"127\.0\.0\.9:%d on \S+: denied by --deny 127\.0\.0\.9(/32)?; "
                    r"datagram dropped" % barrier.getsockname()[1])
        assert nothing_for(c)
        assert nothing_for(barrier)
    assert d.stop() == 0, d.log()


# --- 2. the per-source rate ------------------------------------------------------

def flood(to, n=100, host="127.0.0.2"):
    """n datagrams from host as fast as they go; returns its socket."""
    c = client(host)
    for i in range(n):
        c.sendto(b"flood %d" % i, to)
    return c


@case
def default_rate_cuts_a_flood_and_spares_other_sources():
    d, [(_, to)] = builtin("echo")
    t0 = time.monotonic()
    with flood(to) as busy, client("127.0.0.3") as other:
        port = busy.getsockname()[1]
        # Queued behind the flood: when the last of these is answered,
        # worker 0 has been through all 100 of the flood's.
        for i in range(5):
            other.sendto(b"other %d" % i, to)
        other.settimeout(10)
        got = sorted(other.recv(100) for _ in range(5))
        elapsed = time.monotonic() - t0
        assert got == [b"other %d" % i for i in range(5)], got
        answers = pending(busy)
    # A burst of 10, then 10 a second: what the flood's time allows.
    most = 10 + 1 + int(elapsed * 10)
    assert 10 <= len(answers) <= most, \
        "the flood got %d answers in %.2fs, want 10 to %d" % (len(answers), elapsed, most)
    # The burst answers the first ten; later ones only as time refills it.
    nums = [int(a.split()[1]) for a in answers]
    assert nums[:10] == list(range(10)) and nums == sorted(set(nums)), answers
    d.wait_line(r"127\.0\.0\.2:%d on \S+: over the datagram rate 10/1; datagram dropped"
                % port)
    assert not re.search(r"127\.0\.0\.3:\d+ .*dropped", d.log()), d.log()


@case
def rate_option_raises_the_datagram_rate():
    d, [(_, to)] = builtin("echo", ["--rate", "1000/1"])
    with flood(to) as busy, client("127.0.0.3") as other:
        got, _ = ask(other, to, b"barrier")
        assert got == b"barrier"
        busy.settimeout(10)
        answers = pending(busy)
    assert sorted(answers, key=lambda a: int(a.split()[1])) == \
        [b"flood %d" % i for i in range(100)], "%d of 100 answered" % len(answers)
    assert "datagram dropped" not in d.log(), d.log()


@case
def rules_rate_limits_one_source():
    rules = os.path.join(tmpdir(), "rules")
    with open(rules, "w") as f:
        f.write('127.0.0.4:allow,rate="2/60"\n:allow\n')
    d, [(_, to)] = builtin("echo", ["--rules", rules])
    with client("127.0.0.4") as ruled, client("127.0.0.3") as other:
        port = ruled.getsockname()[1]
        for i in range(5):
            ruled.sendto(b"ruled %d" % i, to)
        # The rule is that source's alone: the default 10 for the rest.
        for i in range(8):
            got, _ = ask(other, to, b"other %d" % i)
            assert got == b"other %d" % i, got
        answers = pending(ruled)
    assert answers == [b"ruled 0", b"ruled 1"], answers
    d.wait_line(r"127\.0\.0\.4:%d on \S+: over the datagram rate 2/60; datagram dropped"
                % port)


# --- 3. admission ---------------------------------------------------------------

@case
def deny_is_never_answered():
    d, [(_, to)] = builtin("echo", ["--deny", "127.0.0.5"])
    with client("127.0.0.5") as bad, client() as good:
        for p in (b"", b"let me in", os.urandom(2000)):
            bad.sendto(p, to)
        got, _ = ask(good, to, b"after them")
        assert got == b"after them"
        assert nothing_for(bad)
        d.wait_line(r"127\.0\.0\.5:%d on \S+: denied by --deny 127\.0\.0\.5(/32)?; "
                    r"datagram dropped" % bad.getsockname()[1])
        # Denied is denied: later ones too, however slowly they come.
        for i in range(3):
            bad.sendto(b"again %d" % i, to)
            got, _ = ask(good, to, b"barrier %d" % i)
            assert got == b"barrier %d" % i
        assert nothing_for(bad)


@case
def rules_deny_with_msg_is_never_answered():
    rules = os.path.join(tmpdir(), "rules")
    with open(rules, "w") as f:
        f.write('127.0.0.5:deny,msg="x"\n:allow\n')
    for service in ("echo", "daytime"):
        d, [(_, to)] = builtin(service, ["--rules", rules])
        with client("127.0.0.5") as bad, client() as good:
            bad.sendto(b"x", to)
            ask(good, to, b"barrier")
            assert nothing_for(bad)     # neither the msg nor an answer
        d.wait_line(r"127\.0\.0\.5:\d+ on \S+: denied by --rules %s:1; datagram dropped"
                    % re.escape(rules))
        assert d.stop() == 0, d.log()


# --- 4. IPv6 and dual stack -------------------------------------------------------

@case
def dual_stack_port_answers_ipv4_and_ipv6_from_the_address_asked():
    need_ipv6()
    d, [(fam, to)] = builtin("echo", listen=("udp:0",))
    assert fam == socket.AF_INET6, d.log()
    port = to[1]
    for family, local, there in ((socket.AF_INET6, "::1", "::1"),
                                 (socket.AF_INET, "127.0.0.1", "127.0.0.1"),
                                 # 127/8 is all this host's: an answer from
                                 # 127.0.0.1 would be someone else's to
                                 # a client that asked 127.0.0.2.
                                 (socket.AF_INET, "127.0.0.1", "127.0.0.2"),
                                 (socket.AF_INET, "127.0.0.3", "127.0.0.7")):
        with client(local, family) as c:
            got, src = ask(c, (there, port), b"from %s to %s" % (local.encode(), there.encode()))
            assert got == b"from %s to %s" % (local.encode(), there.encode()), got
            assert src[:2] == (there, port), \
                "asked %s port %d, answered from %r" % (there, port, src)
    assert d.stop() == 0, d.log()


@case
def ipv6_only_listener_answers_ipv6():
    need_ipv6()
    d, [(fam, to)] = builtin("chargen", listen=("udp:[::1]:0",))
    with client("::1", socket.AF_INET6) as c:
        got, src = ask(c, to, b"")
        assert len(got) == 444 and src[:2] == to, (len(got), src)


# --- 5. unix-dgram --------------------------------------------------------------

@case
def unix_dgram_answers_named_senders_only():
    top = tmpdir()
    path = os.path.join(top, "echo.sock")
    d, [(fam, to)] = builtin("echo", listen=("unix-dgram:" + path,))
    assert fam == socket.AF_UNIX and to == path, d.log()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unnamed, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as named, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as auto:
        named.bind(os.path.join(top, "client.sock"))
        auto.bind("")                   # autobind: an abstract name
        # An unnamed sender has no address to answer: its datagram is
        # skipped, and the ones behind it are served.
        unnamed.sendto(b"who am I", path)
        got, src = ask(named, path, b"named\0bytes")
        assert got == b"named\0bytes" and src == path, (got, src)
        got, _ = ask(auto, path, b"autobound")
        assert got == b"autobound", got
        for i in range(3):
            unnamed.sendto(b"again %d" % i, path)
        got, _ = ask(named, path, b"still serving")
        assert got == b"still serving", got
        assert nothing_for(unnamed)
    assert d.proc.poll() is None, d.log()
    assert d.stop() == 0, d.log()


# --- 6. inherited sockets -----------------------------------------------------------

@case
def listen_fds_two_udp_sockets_answered():
    # fd 3 is where a worker's channel goes: worker_fork moves a datagram
    # socket there out of the way first; fd 4 stays where it is.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u1, \
            socket.socket(socket.AF_INET6 if has_ipv6() else socket.AF_INET,
                          socket.SOCK_DGRAM) as u2:
        u1.bind(("127.0.0.1", 0))
        u2.bind(("::1" if has_ipv6() else "127.0.0.1", 0))
        d = listen_exec([u1.fileno(), u2.fileno()], ["-v", "-b", "echo", "-w", "2"])
        d.listening(2)
        for u in (u1, u2):
            host, port = u.getsockname()[:2]
            with client(host, u.family) as c:
                for i in range(3):
                    got, src = ask(c, (host, port), b"fd %d %d" % (u.fileno(), i))
                    assert got == b"fd %d %d" % (u.fileno(), i) and src[:2] == (host, port), \
                        (got, src)
        assert d.stop() == 0, d.log()
    assert re.search(r"listening on udp:127\.0\.0\.1:\d+ \(fd 3\)", d.log()), d.log()
    assert re.search(r"listening on udp:\S+ \(fd 4\)", d.log()), d.log()


@case
def ipv6_udp_socket_on_fd0_answered():
    need_ipv6()
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as u:
        u.bind(("::1", 0))
        port = u.getsockname()[1]
        d = Daemon(["-b", "time", "-w", "1"], stdin=u)
        d.wait_line(r"started acceptd")
        with client("::1", socket.AF_INET6) as c:
            got, src = ask(c, ("::1", port), b"")
            assert len(got) == 4 and src[:2] == ("::1", port), (got, src)
            (v,) = struct.unpack("!I", got)
            assert abs(v - RFC868_EPOCH - time.time()) < 5, v
        assert d.stop() == 0, d.log()
    # (fd N: where fd 0 went, as inetd.py's IPv4 case sees it too)
    assert "listening on udp:[::1]:%d (fd " % port in d.log(), d.log()


# --- 7. resilience ---------------------------------------------------------------

@case
def worker0_killed_is_restarted_and_answers():
    d, [(_, to)] = builtin("echo")
    w0 = wait_until(lambda: worker0(d), what="worker 0 ready")
    with client() as c:
        got, _ = ask(c, to, b"before")
        assert got == b"before"
    mark = len(d.lines)
    os.kill(w0, signal.SIGKILL)
    d.wait_line(r"worker 0 pid %d killed by signal 9" % w0, start=mark)
    d.wait_line(r"worker 0 pid \d+ ready", start=mark)
    w0b = worker0(d, mark)
    assert w0b != w0 and not pid_dead(w0b), (w0, w0b)
    # The new worker 0 has the datagram sockets: it answers.
    assert answered_again((socket.AF_INET, to), b"after the restart") == b"after the restart"
    # The old worker 0 is gone, and the socket did not go with it.
    assert pid_dead(w0)
    assert d.proc.poll() is None, d.log()
    assert d.stop() == 0, d.log()


@case
def reload_keeps_answering():
    d, [(_, to)] = builtin("daytime")
    with client() as c:
        got, _ = ask(c, to, b"")
        assert got.endswith(b"\r\n"), got
        for i in range(2):
            mark = len(d.lines)
            d.signal(signal.SIGHUP)
            d.wait_line(r"reload: done", start=mark)
            # The same socket: the port did not change, and it answers.
            got, src = ask(c, to, b"after reload %d" % i)
            assert got.endswith(b"\r\n") and src == to, (got, src)
        assert d.proc.poll() is None and d.pid == d.proc.pid, d.log()
        ports = set(re.findall(r"listening on udp:127\.0\.0\.1:(\d+)", d.log()))
        assert ports == {str(to[1])}, d.log()
        assert nothing_for(c)
    assert d.stop() == 0, d.log()


@case
def sigterm_exits_zero_promptly():
    d, [(_, to)] = builtin("echo", ["--rate", "1000/1"])
    with client() as c:
        ask(c, to, b"hello")
        for i in range(50):
            c.sendto(b"in flight %d" % i, to)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait(timeout=5)
        took = time.monotonic() - t0
    assert rc == 0, "exit %r:\n%s" % (rc, d.log())
    assert took < 3, "SIGTERM took %.1fs" % took
    # The workers went with it.
    for m in re.finditer(r"worker \d+ pid (\d+) ready", d.log()):
        wait_until(lambda: pid_dead(int(m.group(1))), 5, "worker pid %s gone" % m.group(1))



# Last: it moves this process into a network namespace of its own.
@case
def dual_stack_port_answers_from_a_second_ipv6_address():
    need_ipv6()
    private_netns()
    ip = shutil.which("ip") or "/sbin/ip"
    r = subprocess.run([ip, "addr", "add", "2001:db8:16::7/128", "dev", "lo", "nodad"],
                       capture_output=True, timeout=10)
    assert r.returncode == 0 or b"exists" in r.stderr, r.stderr
    d, [(fam, to)] = builtin("echo", listen=("udp:0",))
    for local, there in (("::1", "2001:db8:16::7"), ("2001:db8:16::7", "::1"),
                         ("::1", "::1")):
        with client(local, socket.AF_INET6) as c:
            got, src = ask(c, (there, to[1]), b"to " + there.encode())
            assert got == b"to " + there.encode(), got
            assert src[:2] == (there, to[1]), \
                "asked [%s]:%d, answered from %r" % (there, to[1], src)


run()
