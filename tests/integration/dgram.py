"""dgram.py - datagram services in wait mode (issue #16): udp:, unix-dgram:
and inherited SOCK_DGRAM sockets served the inetd way, by a PROGRAM that
gets the socket itself on fds 0 and 1 and reads it.

  * a real tftp server, tftp-hpa's in.tftpd (unpacked from the .deb that
    tests/fetch-debs.sh fetched; never installed, its own service never
    enabled), serving files of a few MB to curl through acceptd: standalone
    (-l udp:), from systemd-socket-activate --datagram, from a real OpenBSD
    inetd "dgram udp wait" entry and from xinetd (socket_type = dgram,
    wait = yes); two clients at once;
  * the handler's environment (PROTO=UDP, UDP*, ACCEPTD_LISTENER; UNIX*
    for unix-dgram with a sender of another uid) and its fd 0 (blocking,
    the listener itself, also on fd 1);
  * admission on the waiting datagram's source: --deny, --rules (msg= is
    never sent), --rate; a refused datagram is read and dropped, so it
    never blocks the ones behind it;
  * a handler that never reads: a growing back-off, no spinning;
  * datagrams of every size, 0 to 65507 bytes;
  * lifecycle: one handler per socket at a time, -c, -t, the SIGTERM
    drain, --idle-exit, -u, a SIGHUP reload while a handler holds the
    socket, stream and datagram listeners in one acceptd;
  * errors not checked elsewhere: -l unix-dgram: with --fd-passing, and a
    real systemd-socket-activate --datagram socket given to --fd-passing
    (built-ins answer datagrams themselves).  errors.py checks -l udp:
    with --fd-passing; inetd.py and sources.py inherited datagram sockets.

The handler (HANDLER below, written into a scratch directory) reads one
datagram with recvfrom and answers its sender with a JSON report: its
environment, fd 0's O_NONBLOCK, ids, the length and SHA-256 of what it
read.  Options make it count its starts (--touch DIR), leave its datagram
unread unless a file exists (--need FILE), hold the socket until a file
exists (--hold FILE), or sleep forever (--sleep).  A datagram that was
refused or is still queued is seen as nothing on the client's socket
(a non-blocking recv), after a barrier: the answer to a later datagram,
or two SIGUSR1 counter lines (a datagram sent before the first signal
was dispatched in the same turn or an earlier one)."""
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (ACCEPTD as _ACCEPTD, Daemon, Skip, case, counters, exchange,  # noqa: E402
                          has_ipv6, parse_addr, pid_dead, private_netns, run,
                          run_acceptd, tmpdir, wait_until, write_script)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from inetds import Superserver, missing_libs, openbsd_inetd, unpacked_debs  # noqa: E402

ACCEPTD = os.path.abspath(_ACCEPTD)     # inetd and xinetd run it from their own cwd
SSA = shutil.which("systemd-socket-activate")
CURL = shutil.which("curl")
NOBODY = 65534

HANDLER = r'''
import fcntl, hashlib, json, os, socket, sys, time

def opt(name):
    a = sys.argv[1:]
    return a[a.index(name) + 1] if name in a else None

def wait_file(path):
    while not os.path.exists(path):
        time.sleep(0.02)

if opt("--touch"):
    open(os.path.join(opt("--touch"), "start.%d" % os.getpid()), "w").close()
if opt("--need") and not os.path.exists(opt("--need")):
    sys.exit(0)                 # the datagram that started it stays unread
flags = fcntl.fcntl(0, fcntl.F_GETFL)
st0, st1 = os.fstat(0), os.fstat(1)
info = {"env": dict(os.environ), "nonblock": bool(flags & os.O_NONBLOCK),
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
        "pid": os.getpid(), "ppid": os.getppid(),
        "fd1": (st0.st_dev, st0.st_ino) == (st1.st_dev, st1.st_ino)}
if os.environ.get("PROTO") == "TCP":
    os.write(1, json.dumps(info).encode())
    sys.exit(0)
s = socket.socket(fileno=0)
data, peer = s.recvfrom(1 << 17)
info.update(len=len(data), sha=hashlib.sha256(data).hexdigest(),
            peer=peer if isinstance(peer, str) else list(peer[:2]))
s.sendto(json.dumps(info).encode(), peer)
if opt("--hold"):
    wait_file(opt("--hold"))
if "--sleep" in sys.argv:
    while True:
        time.sleep(3600)
if opt("--done"):
    open(opt("--done"), "w").close()
'''

_handler = []


def interpreter():
    """A Python that nobody may run too (-u nobody): the one running the
    tests may live under a 0700 home, as pyenv's under /root does."""
    if os.geteuid() != 0:
        return sys.executable
    for cand in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        try:
            if cand and subprocess.run([cand, "-c", "import json, socket"], user=NOBODY,
                                       group=NOBODY, extra_groups=[], timeout=20,
                                       stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL).returncode == 0:
                return cand
        except OSError:
            pass
    return sys.executable       # user_nobody_runs_the_handler then fails, saying so


def handler():
    """The handler's path, in a directory any user may read (-u nobody)."""
    if not _handler:
        top = tmpdir()
        os.chmod(top, 0o755)
        _handler.append(write_script(top, "handler.py", "#!%s\n%s" % (interpreter(), HANDLER)))
    return _handler[0]


def acceptd(args, listen=("udp:127.0.0.1:0",), hargs=(), verbose=True):
    """acceptd -v -l LISTEN... ARGS -- handler HARGS; returns it and its
    listeners' names as logged."""
    cmd = (["-v"] if verbose else []) + [w for a in listen for w in ("-l", a)] + list(args)
    d = Daemon(cmd + ["--", handler()] + list(hargs))
    return d, d.listening(len(listen))


def dest(name):
    """A listener's logged name (udp:127.0.0.1:P, udp:[::1]:P,
    unix-dgram:PATH) -> (family, address to send to)."""
    if name.startswith("unix-dgram:"):
        return socket.AF_UNIX, name[len("unix-dgram:"):]
    assert name.startswith("udp:"), name
    return parse_addr(name[4:])


def client(host="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    return s


def ask(sock, to, payload=b"hello", timeout=10):
    """Send one datagram, return the handler's report (a dict)."""
    sock.sendto(payload, to)
    return answer(sock, timeout)


def answer(sock, timeout=10):
    sock.settimeout(timeout)
    try:
        data = sock.recv(1 << 17)
    except socket.timeout:
        raise AssertionError("no answer within %ss" % timeout)
    return json.loads(data)


def nothing_for(sock):
    """True when nothing waits on the client's socket now."""
    sock.setblocking(False)     # a timeout would make recv wait first
    try:
        data = sock.recv(1 << 17)
    except BlockingIOError:
        return True
    raise AssertionError("the client got %r" % data[:200])


def starts(markdir):
    return sorted(int(n.split(".", 1)[1]) for n in os.listdir(markdir) if n.startswith("start."))


def barrier(d):
    """Two counter lines: a datagram sent before this was dispatched by
    the loop before the second line (see the header).  Returns it."""
    counters(d)
    return counters(d)


def touch(path):
    open(path, "w").close()


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_bound(port):
    """True once a UDP socket is bound to 127.0.0.1:port (read from
    /proc/net/udp: a probe datagram would start a service)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/udp") as f:
        return any(ln.split()[1] == want for ln in f.readlines()[1:])


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def no_tcp_vars(env):
    bad = [k for k in env if k.startswith("TCP") or k in ("REMOTE_ADDR", "REMOTE_PORT")]
    assert not bad, "a datagram handler got %s: %r" % (bad, env)


# --- in.tftpd -------------------------------------------------------------------

def tftpd():
    binary = os.path.join(unpacked_debs("tftpd", ["tftpd-hpa"]), "usr", "sbin", "in.tftpd")
    missing = missing_libs(binary)
    if missing:
        raise Skip("in.tftpd needs libraries not installed: %s" % ", ".join(missing))
    if not CURL:
        raise Skip("curl not installed")
    return binary


def tftp_root(sizes=(3 << 20,)):
    """A directory with files f0, f1... of random bytes; returns it and
    {name: sha256}."""
    top = tmpdir()
    sums = {}
    for i, n in enumerate(sizes):
        data = os.urandom(n)
        with open(os.path.join(top, "f%d" % i), "wb") as f:
            f.write(data)
        sums["f%d" % i] = hashlib.sha256(data).hexdigest()
    return top, sums


def tftpd_argv(root):
    # -t 1: in wait mode, how long in.tftpd waits for another request
    # before it exits and gives the socket back.
    return [tftpd(), "-v", "-t", "1", "-s", root, "-u", "root"]


def curl(port, name):
    """Start curl fetching tftp://127.0.0.1:PORT/NAME into a fresh file."""
    out = os.path.join(tmpdir(), name)
    p = subprocess.Popen([CURL, "-sS", "--max-time", "30", "-o", out,
                          "tftp://127.0.0.1:%d/%s" % (port, name)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p, out


def fetched(p, out, want, diag=lambda: ""):
    """Wait for curl (bounded; killed by its pid if it hangs) and compare."""
    try:
        _, err = p.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=5)
        raise AssertionError("curl still running after 40 s\n" + diag())
    assert p.returncode == 0, "curl exit %d: %s\n%s" % (p.returncode, err.decode(), diag())
    with open(out, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    assert got == want, "%s: got a file of %d bytes, not the one served" % (
        out, os.path.getsize(out))


def fetch(port, name, want, diag=lambda: ""):
    p, out = curl(port, name)
    fetched(p, out, want, diag)


@case
def tftpd_standalone():
    root, sums = tftp_root()
    d = Daemon(["-v", "-l", "udp:127.0.0.1:0", "--"] + tftpd_argv(root))
    name, = d.listening()
    port = int(re.fullmatch(r"udp:127\.0\.0\.1:(\d+)", name).group(1))
    fetch(port, "f0", sums["f0"], d.log)
    m = d.wait_line(r"datagram 127\.0\.0\.1:\d+ on udp:127\.0\.0\.1:%d pid (\d+)" % port)
    # in.tftpd exits after -t 1 without another request: the socket is
    # back, and the next request starts it again.
    d.wait_line(r"end 127\.0\.0\.1:\d+ pid %s status 0" % m.group(1))
    fetch(port, "f0", sums["f0"], d.log)
    assert len(re.findall(r"datagram 127\.0\.0\.1:\d+ on", d.log())) == 2, d.log()
    assert "without reading" not in d.log(), d.log()


@case
def tftpd_standalone_two_clients_at_once():
    root, sums = tftp_root((3 << 20, 2 << 20))
    d = Daemon(["-v", "-l", "udp:127.0.0.1:0", "--"] + tftpd_argv(root))
    name, = d.listening()
    port = int(name.rsplit(":", 1)[1])
    a = curl(port, "f0")
    b = curl(port, "f1")
    fetched(*a, sums["f0"], d.log)
    fetched(*b, sums["f1"], d.log)


@case
def tftpd_from_systemd_socket_activate():
    if not SSA:
        raise Skip("systemd-socket-activate not installed")
    root, sums = tftp_root()
    port = free_udp_port()
    d = Daemon(["-v", "--"] + tftpd_argv(root),
               argv0=[SSA, "--datagram", "-l", "127.0.0.1:%d" % port, "--", ACCEPTD])
    d.wait_line(r"Listening on 127\.0\.0\.1:%d as 3\." % port)
    # The first request is what makes systemd-socket-activate exec
    # acceptd (in its own pid): it waits in the socket and is served.
    fetch(port, "f0", sums["f0"], d.log)
    d.wait_line(r"listening on \S+ \(fd 3\)")
    d.wait_line(r"datagram 127\.0\.0\.1:\d+ on \S+ pid \d+")
    assert exe_of(d.pid) == os.path.realpath(ACCEPTD), "pid %d runs %s" % (d.pid, exe_of(d.pid))
    fetch(port, "f0", sums["f0"], d.log)


def start_openbsd_udp(top, fields):
    inetd = openbsd_inetd()
    conf = os.path.join(top, "inetd.conf")
    with open(conf, "w") as f:
        f.write("\t".join(fields) + "\n")
    d = Daemon([conf], argv0=[inetd, "-d"], tree=True)
    port = int(fields[0].rsplit(":", 1)[1])
    s = Superserver(d, port, r"\b(?P<pid>\d+) reaped, status (?P<status>0x[0-9a-f]+|\d+)",
                    d.log)
    wait_until(lambda: udp_bound(port), 10, "inetd on udp 127.0.0.1:%d" % port)
    return s


def start_xinetd_udp(top, name, attrs, port):
    xinetd = shutil.which("xinetd")
    if not xinetd:
        raise Skip("xinetd not installed")
    svclog = os.path.join(top, "service.log")
    body = "".join("\t%s = %s\n" % a for a in attrs)
    conf = os.path.join(top, "xinetd.conf")
    with open(conf, "w") as f:
        f.write("defaults\n{\n\tlog_type = FILE %s\n\tlog_on_success = PID HOST EXIT\n"
                "\tlog_on_failure = HOST\n}\n\nservice %s\n{\n%s}\n" % (svclog, name, body))
    d = Daemon([], argv0=[xinetd, "-dontfork", "-stayalive", "-f", conf,
                          "-pidfile", os.path.join(top, "xinetd.pid"),
                          "-filelog", os.path.join(top, "xinetd.log")], tree=True)

    def log():
        text = []
        for p in (svclog, os.path.join(top, "xinetd.log")):
            try:
                with open(p) as f:
                    text.append(f.read())
            except OSError:
                pass
        return "\n".join(text) + d.log()
    s = Superserver(d, port, r"EXIT: \S+ status=(?P<status>-?\d+) pid=(?P<pid>\d+)", log)
    wait_until(lambda: udp_bound(port), 10, "xinetd on udp 127.0.0.1:%d" % port)
    return s


def serve_twice_under(s, sums):
    """A request starts an acceptd, which serves it and exits of
    --idle-exit; the superserver has its socket back and the next request
    starts another acceptd."""
    fetch(s.port, "f0", sums["f0"], s.diag)
    first = s.acceptds()
    assert len(first) == 1, "%r running after a request\n%s" % (first, s.diag())
    first = first[0]
    assert exe_of(first) == os.path.realpath(ACCEPTD), \
        "the superserver's child %d runs %s" % (first, exe_of(first))
    assert s.wait_exit(first) == 0, s.diag()
    fetch(s.port, "f0", sums["f0"], s.diag)
    new = wait_until(lambda: (set(s.exits()) | set(s.acceptds())) - {first}, 10,
                     "a second acceptd")
    assert len(new) == 1, "%r after one more request\n%s" % (new, s.diag())
    second = new.pop()
    assert s.wait_exit(second) == 0, s.diag()


@case
def tftpd_from_openbsd_inetd_dgram_wait():
    root, sums = tftp_root()
    top = tmpdir()
    port = free_udp_port()
    s = start_openbsd_udp(top, ["127.0.0.1:%d" % port, "dgram", "udp", "wait", "root",
                                ACCEPTD, "acceptd", "--idle-exit", "1", "--"]
                          + tftpd_argv(root))
    with s:
        serve_twice_under(s, sums)


@case
def tftpd_from_xinetd_dgram_wait():
    root, sums = tftp_root()
    top = tmpdir()
    port = free_udp_port()
    args = ["--idle-exit", "1", "--"] + tftpd_argv(root)
    s = start_xinetd_udp(top, "tftp", [
        ("disable", "no"), ("type", "UNLISTED"), ("socket_type", "dgram"),
        ("protocol", "udp"), ("wait", "yes"), ("user", "root"), ("port", str(port)),
        ("bind", "127.0.0.1"), ("server", ACCEPTD), ("server_args", " ".join(args))], port)
    with s:
        serve_twice_under(s, sums)


# --- the handler's environment ---------------------------------------------------

def check_udp_env(r, listener, local, me, payload, mapped=False):
    """r: the handler's report; local: (ip, port) the datagram was sent to;
    me: the client's (ip, port); mapped: the handler's recvfrom says
    ::ffff:IP (an IPv4 client of a dual-stack socket)."""
    env = r["env"]
    lip, lport = local
    rip, rport = me[:2]

    def addr(ip, port):
        return ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, port)
    want = {"PROTO": "UDP", "UDPLOCALIP": lip, "UDPLOCALPORT": str(lport),
            "UDPLOCALADDR": addr(lip, lport), "UDPREMOTEIP": rip,
            "UDPREMOTEPORT": str(rport), "UDPREMOTEADDR": addr(rip, rport),
            "ACCEPTD_LISTENER": listener}
    got = {k: env.get(k) for k in want}
    assert got == want, "environment %r, want %r" % (got, want)
    no_tcp_vars(env)
    assert not [k for k in env if k.startswith(("UNIX", "LISTEN_"))], env
    assert r["nonblock"] is False, "fd 0 is O_NONBLOCK in the handler"
    assert r["fd1"], "fd 1 is not the socket of fd 0"
    peer = ["::ffff:" + rip if mapped else rip, rport]
    assert r["peer"] == peer, "read from %r, sent from %r" % (r["peer"], me)
    assert (r["len"], r["sha"]) == (len(payload), hashlib.sha256(payload).hexdigest()), r


@case
def env_udp_ipv4():
    d, (name,) = acceptd([])
    fam, to = dest(name)
    with client() as c:
        r = ask(c, to, b"env, please")
        check_udp_env(r, name, to, c.getsockname(), b"env, please")
    assert r["ppid"] == d.pid, "handler's parent %d, acceptd %d" % (r["ppid"], d.pid)


@case
def env_udp_ipv6():
    if not has_ipv6():
        raise Skip("no IPv6 on loopback")
    d, (name,) = acceptd([], listen=("udp:[::1]:0",))
    assert name.startswith("udp:[::1]:"), name
    fam, to = dest(name)
    with client("::1", socket.AF_INET6) as c:
        r = ask(c, to, b"six")
        check_udp_env(r, name, to, c.getsockname(), b"six")


@case
def env_udp_wildcard_local_address_of_the_datagram():
    """A wildcard bind's handler sees the address each datagram was sent
    to (IP_PKTINFO), and an IPv4 client of the dual-stack socket as IPv4.
    In a network namespace of its own: the wildcard is loopback only."""
    private_netns()
    specs = ["udp:0.0.0.0:0", "udp:0"]
    for spec in specs:
        with Daemon(["-v", "-l", spec, "--", handler()]) as d:
            name, = d.listening()
            port = int(name.rsplit(":", 1)[1])
            assert name == ("udp:0.0.0.0:%d" if spec == specs[0] else "udp:[::]:%d") % port, name
            for src, to in (("127.0.0.1", "127.0.0.1"), ("127.0.0.5", "127.0.0.2")):
                with client(src) as c:
                    r = ask(c, (to, port), b"to " + to.encode())
                    check_udp_env(r, name, (to, port), c.getsockname(), b"to " + to.encode(),
                                  mapped=spec == "udp:0")
            if spec == "udp:0" and has_ipv6():
                with client("::1", socket.AF_INET6) as c:
                    r = ask(c, ("::1", port), b"v6")
                    check_udp_env(r, name, ("::1", port), c.getsockname(), b"v6")


@case
def env_unix_dgram_sender_of_another_uid():
    top = tmpdir()
    os.chmod(top, 0o755)
    path = os.path.join(top, "srv.sock")
    d, (name,) = acceptd(["--socket-mode", "0666"], listen=("unix-dgram:" + path,))
    assert name == "unix-dgram:" + path, name
    me = os.path.join(top, "cli.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as c:
        c.bind(me)
        # The sender is a child that became nobody; it waits (on a pipe)
        # until the answer is in, so its pid is still its own then.
        r_fd, w_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(w_fd)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                c.sendto(b"from nobody", path)
                os.read(r_fd, 1)
                os._exit(0)
            except BaseException:  # noqa: B902 - the child must not return
                os._exit(1)
        os.close(r_fd)
        try:
            r = answer(c)
        finally:
            os.close(w_fd)
            _, st = os.waitpid(pid, 0)
        assert st == 0, "the sending child exited %#x" % st
    env = r["env"]
    want = {"PROTO": "UNIX", "UNIXREMOTEEUID": str(NOBODY), "UNIXREMOTEEGID": str(NOBODY),
            "UNIXREMOTEPID": str(pid), "UNIXLOCALPATH": path, "ACCEPTD_LISTENER": name}
    got = {k: env.get(k) for k in want}
    assert got == want, "environment %r, want %r" % (got, want)
    no_tcp_vars(env)
    assert not [k for k in env if k.startswith("UDP")], env
    assert r["peer"] == me and r["len"] == len(b"from nobody"), r
    assert r["nonblock"] is False and r["fd1"], r


# --- admission ----------------------------------------------------------------

@case
def deny_drops_and_does_not_block_the_queue():
    marks = tmpdir()
    d, (name,) = acceptd(["--deny", "127.0.0.3"], hargs=["--touch", marks])
    _, to = dest(name)
    with client("127.0.0.3") as bad, client("127.0.0.2") as good:
        bad.sendto(b"let me in", to)
        # Queued behind the refused one: served only if that one was read.
        r = ask(good, to, b"me first", timeout=5)
        assert r["env"]["UDPREMOTEIP"] == "127.0.0.2", r["env"]
        d.wait_line(r"127\.0\.0\.3:%d: denied by --deny 127\.0\.0\.3(/32)?; datagram dropped"
                    % bad.getsockname()[1])
        assert starts(marks) == [r["pid"]], "handlers %r, want only %d" % (starts(marks), r["pid"])
        assert nothing_for(bad)
        assert counters(d)["refused"] == 1, d.log()


@case
def rules_deny_never_answers_and_variables_reach_the_handler():
    marks = tmpdir()
    rules = os.path.join(tmpdir(), "rules")
    with open(rules, "w") as f:
        f.write('127.0.0.3:deny,msg="nope"\n127.0.0.2:allow,GREETING="from the rules"\n:allow\n')
    d, (name,) = acceptd(["--rules", rules], hargs=["--touch", marks])
    _, to = dest(name)
    with client("127.0.0.3") as bad, client("127.0.0.2") as good, client() as plain:
        bad.sendto(b"nope?", to)
        r = ask(good, to, b"ruled")
        assert r["env"].get("GREETING") == "from the rules", r["env"]
        d.wait_line(r"127\.0\.0\.3:\d+: denied by --rules %s:1; datagram dropped"
                    % re.escape(rules))
        d.wait_line(r"end 127\.0\.0\.2:\d+ pid %d status 0" % r["pid"])
        r = ask(plain, to, b"default rule")
        assert "GREETING" not in r["env"], r["env"]
        assert len(starts(marks)) == 2, starts(marks)
        assert nothing_for(bad)


@case
def rate_drops_the_third_datagram_of_a_source():
    marks = tmpdir()
    d, (name,) = acceptd(["--rate", "2/60"], hargs=["--touch", marks])
    _, to = dest(name)
    with client("127.0.0.2") as busy, client("127.0.0.4") as other:
        for i in range(2):
            r = ask(busy, to, b"datagram %d" % i)
            assert r["len"] == len(b"datagram 0"), r
        busy.sendto(b"one too many", to)
        r = ask(other, to, b"another source")
        assert r["env"]["UDPREMOTEIP"] == "127.0.0.4", r["env"]
        d.wait_line(r"127\.0\.0\.2:%d: over --rate 2/60; datagram dropped"
                    % busy.getsockname()[1])
        assert len(starts(marks)) == 3, starts(marks)
        assert nothing_for(busy)


# --- a handler that never reads ------------------------------------------------

BACKOFF = r"the handler exited without reading its datagram; starting the next in %d ms"


@case
def handler_that_never_reads_backs_off():
    marks = tmpdir()
    flag = os.path.join(tmpdir(), "read-now")
    d, (name,) = acceptd([], hargs=["--touch", marks, "--need", flag])
    _, to = dest(name)
    with client() as c:
        cpu0 = cpu_seconds(d.pid)
        t0 = time.monotonic()
        c.sendto(b"read me", to)
        for ms in (100, 200, 400, 800, 1600, 3200):
            d.wait_line(BACKOFF % ms, timeout=15)
        spent, took = cpu_seconds(d.pid) - cpu0, time.monotonic() - t0
        assert took > 3, "six back-offs in %.1f s" % took
        assert spent < 0.3, "acceptd used %.2f s of CPU in %.1f s" % (spent, took)
        assert len(starts(marks)) == 6, "%d handlers in %.1f s" % (len(starts(marks)), took)
        # A handler that reads: the datagram (after the 3.2 s back-off),
        # and then the next one at once.
        touch(flag)
        r = answer(c, timeout=15)
        assert r["len"] == len(b"read me"), r
        mark = len(d.lines)
        t1 = time.monotonic()
        r = ask(c, to, b"and me")
        assert r["len"] == len(b"and me"), r
        assert time.monotonic() - t1 < 2, "the back-off was not reset"
        assert not [ln for ln in d.lines[mark:] if "without reading" in ln], d.log()


# --- datagrams of every size --------------------------------------------------

@case
def datagrams_of_every_size():
    d, (name,) = acceptd([])
    _, to = dest(name)
    garbage = bytes(range(256)) * 3 + b"\r\n\x00\xff" * 50
    with client() as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 18)
        for payload in (b"", b"\x00", os.urandom(1), garbage, b"\xff" * 1472,
                        os.urandom(65507), b"last"):
            r = ask(c, to, payload)
            assert (r["len"], r["sha"]) == (len(payload), hashlib.sha256(payload).hexdigest()), \
                "sent %d bytes, the handler read %d" % (len(payload), r["len"])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as big:
            try:
                big.sendto(b"x" * 65508, to)
                raise AssertionError("a 65508-byte UDP datagram over IPv4 was sent")
            except OSError:
                pass
    assert "without reading" not in d.log(), d.log()


@case
def identical_datagrams_in_a_row_are_each_served_at_once():
    """Each handler reads one; the next, queued meanwhile, is the same
    bytes from the same source (a retransmission, a heartbeat).  It is a
    new datagram: no back-off, no 'without reading'."""
    marks = tmpdir()
    d, (name,) = acceptd([], hargs=["--touch", marks])
    _, to = dest(name)
    with client() as c:
        for _ in range(4):
            c.sendto(b"ping", to)
        t0 = time.monotonic()
        for _ in range(4):
            assert answer(c)["len"] == 4
        took = time.monotonic() - t0
    assert len(starts(marks)) == 4, starts(marks)
    assert "without reading" not in d.log(), "%.2f s:\n%s" % (took, d.log())


# --- lifecycle ------------------------------------------------------------------

@case
def one_handler_per_socket_at_a_time():
    marks = tmpdir()
    flag = os.path.join(tmpdir(), "release")
    d, (name,) = acceptd([], hargs=["--touch", marks, "--hold", flag])
    _, to = dest(name)
    with client() as a, client("127.0.0.2") as b:
        first = ask(a, to, b"first")
        b.sendto(b"second", to)
        assert barrier(d)["active"] == 1, d.log()
        assert starts(marks) == [first["pid"]], starts(marks)
        assert nothing_for(b)
        touch(flag)
        second = answer(b)
        assert second["pid"] != first["pid"] and second["len"] == len(b"second"), second
    assert "without reading" not in d.log(), d.log()


@case
def max_conns_one_over_two_sockets():
    marks = tmpdir()
    flag = os.path.join(tmpdir(), "release")
    d, names = acceptd(["-c", "1"], listen=("udp:127.0.0.1:0", "udp:127.0.0.1:0"),
                       hargs=["--touch", marks, "--hold", flag])
    (_, to1), (_, to2) = dest(names[0]), dest(names[1])
    with client() as a, client() as b:
        first = ask(a, to1, b"one")
        b.sendto(b"two", to2)
        c = barrier(d)
        assert (c["active"], c["total"]) == (1, 1), c
        assert starts(marks) == [first["pid"]], starts(marks)
        assert nothing_for(b)
        touch(flag)
        second = answer(b)
        assert second["env"]["ACCEPTD_LISTENER"] == names[1], second["env"]


@case
def timeout_kills_the_handler_and_the_socket_comes_back():
    d, (name,) = acceptd(["-t", "2"], hargs=["--sleep"])
    _, to = dest(name)
    with client() as c:
        first = ask(c, to, b"sleepy")
        d.wait_line(r"pid %d: running for [\d.]+ s, over --timeout; sending SIGTERM"
                    % first["pid"], timeout=10)
        d.wait_line(r"end 127\.0\.0\.1:\d+ pid %d killed by signal 15" % first["pid"])
        assert pid_dead(first["pid"])
        second = ask(c, to, b"again")
        assert second["pid"] != first["pid"], second


@case
def sigterm_drains_a_running_handler():
    top = tmpdir()
    flag, done = os.path.join(top, "release"), os.path.join(top, "done")
    d, (name,) = acceptd([], hargs=["--hold", flag, "--done", done])
    _, to = dest(name)
    with client() as c:
        r = ask(c, to, b"drain me")
    d.signal(signal.SIGTERM)
    d.wait_line(r"SIGTERM: stopping; 1 connection\(s\) open")
    assert d.proc.poll() is None, d.log()
    touch(flag)
    assert d.wait() == 0, d.log()
    assert os.path.exists(done), "the handler did not finish"
    assert re.search(r"end 127\.0\.0\.1:\d+ pid %d status 0" % r["pid"], d.log()), d.log()


@case
def idle_exit_after_the_handler():
    flag = os.path.join(tmpdir(), "release")
    d, (name,) = acceptd(["--idle-exit", "1"], hargs=["--hold", flag])
    _, to = dest(name)
    with client() as c:
        ask(c, to, b"keep me up")
    try:
        d.proc.wait(2)              # a running handler keeps it up
        raise AssertionError("exited while its handler ran:\n" + d.log())
    except subprocess.TimeoutExpired:
        pass
    touch(flag)
    d.wait_line(r"no connection for 1 s \(--idle-exit\): stopping")
    assert d.wait() == 0, d.log()


@case
def user_nobody_runs_the_handler():
    nobody = pwd.getpwnam("nobody")
    d, (name,) = acceptd(["-u", "nobody"])
    _, to = dest(name)
    with client() as c:
        r = ask(c, to, b"who am I")
    assert (r["uid"], r["euid"], r["gid"]) == (nobody.pw_uid, nobody.pw_uid, nobody.pw_gid), r
    with open("/proc/%d/status" % d.pid) as f:
        assert re.search(r"^Uid:\s+%d\s" % nobody.pw_uid, f.read(), re.M), "acceptd kept root"


@case
def reload_while_a_handler_holds_the_socket():
    marks = tmpdir()
    flag = os.path.join(tmpdir(), "release")
    d, (name,) = acceptd([], hargs=["--touch", marks, "--hold", flag])
    _, to = dest(name)
    with client() as a, client("127.0.0.2") as b:
        first = ask(a, to, b"before the reload")
        d.signal(signal.SIGHUP)
        d.wait_line(r"reload: done; 1 connection\(s\) carried over")
        d.wait_line(r"listening on %s \(kept across the reload\)" % re.escape(name))
        b.sendto(b"after the reload", to)
        assert barrier(d)["active"] == 1, d.log()
        assert starts(marks) == [first["pid"]], "a second handler while the first holds " \
            "the socket: %r\n%s" % (starts(marks), d.log())
        assert nothing_for(b)
        assert exe_of(d.pid) == os.path.realpath(ACCEPTD) and d.proc.poll() is None
        touch(flag)
        second = answer(b)
        assert second["pid"] != first["pid"] and second["ppid"] == d.pid, second
        d.wait_line(r"end 127\.0\.0\.1:\d+ pid %d status 0" % first["pid"])
    assert "without reading" not in d.log(), d.log()


@case
def stream_and_datagram_listeners_in_one_acceptd():
    flag = os.path.join(tmpdir(), "release")
    d, (tcp, udp) = acceptd([], listen=("127.0.0.1:0", "udp:127.0.0.1:0"),
                            hargs=["--hold", flag])
    assert not tcp.startswith("udp:") and udp.startswith("udp:"), (tcp, udp)
    _, to = dest(udp)
    with client() as c:
        r = ask(c, to, b"datagram")
        assert r["env"]["PROTO"] == "UDP" and r["env"]["ACCEPTD_LISTENER"] == udp, r["env"]
        # The datagram socket is held; the stream listener still serves.
        env = json.loads(exchange(tcp))["env"]
        assert env["PROTO"] == "TCP" and env["ACCEPTD_LISTENER"] == tcp, env
        assert env["TCPLOCALPORT"] == tcp.rsplit(":", 1)[1], env
        assert not [k for k in env if k.startswith("UDP")], env
        touch(flag)
        r = ask(c, to, b"datagram again")
        assert r["env"]["PROTO"] == "UDP", r["env"]


# --- errors not checked elsewhere ---------------------------------------------

@case
def datagram_listen_with_fd_passing_is_a_usage_error():
    # errors.py checks -l udp: with --fd-passing.
    args = ["-l", "unix-dgram:/nonexistent/x", "--fd-passing", "--", "/bin/cat"]
    rc, out, err = run_acceptd(args)
    assert rc == 2 and len(err) == 1 and out == "", (rc, out, err)
    assert "--listen" in err[0] and "unix-dgram:/nonexistent/x" in err[0], err
    assert "--fd-passing" in err[0], err


@case
def inherited_datagram_socket_with_fd_passing_is_an_error():
    """From a real systemd-socket-activate --datagram (sources.py gives
    LISTEN_FDS sockets by hand): exit 1 naming fd 3."""
    if not SSA:
        raise Skip("systemd-socket-activate not installed")
    port = free_udp_port()
    with Daemon(["--fd-passing", "--", "/bin/cat"],
                argv0=[SSA, "--datagram", "-l", "127.0.0.1:%d" % port, "--", ACCEPTD]) as d:
        d.wait_line(r"Listening on 127\.0\.0\.1:%d as 3\." % port)
        with client() as c:
            c.sendto(b"exec it", ("127.0.0.1", port))
            rc = d.wait()
    assert rc == 1, "exit %r:\n%s" % (rc, d.log())
    d.wait_line(r"fd 3\b.*a datagram socket: --fd-passing workers take connections")
    assert "started acceptd" not in d.log(), d.log()


run()
