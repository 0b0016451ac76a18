"""inetd.py - acceptd started by a real inetd (xinetd and OpenBSD inetd),
in "nowait" (a connected socket on fds 0-2: serve it, exit) and "wait" (the
listening socket on fd 0: an accept loop) modes, and the fd 0 rules without
an inetd: the exit status of a "nowait" connection (the handler's, 128+N
when it died of signal N), -i with a unix socketpair, a socketpair without
-i, a UDP socket.

Each inetd runs in the foreground from a generated config on a free
127.0.0.1 port; readiness is polled with wait_port() (they have no signal
acceptd could give).  acceptd processes they start are stopped by pid
before the inetd itself is.

OpenBSD inetd conflicts with xinetd as a package, so when it is not
installed its binary is fetched with `apt-get download` into a cache
outside the source tree ($ACCEPTD_TEST_CACHE, else $TMPDIR/acceptd-test-cache)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (ACCEPTD, Daemon, Skip, case, exchange, free_port,  # noqa: E402
                          pid_dead, proc_stat, read_all, run, stop_pid,
                          talk, tmpdir, wait_port, wait_until)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
import inetds  # noqa: E402

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
ENV_SH = os.path.join(HELPERS, "src_env.sh")
XINETD = shutil.which("xinetd")
LOG_TEXT = (b"acceptd:", b"acceptd[", b"warning:")


# --- helpers local to this file --------------------------------------------

def parse_env(out):
    """src_env.sh's report -> dict.  Every line must be the handler's: a
    log line of acceptd's in the client's stream fails here."""
    lines = out.decode("utf-8", "replace").splitlines()
    assert lines and lines[-1] == "END", "handler output incomplete: %r" % out
    bad = [ln for ln in lines[:-1] if not re.match(r"[A-Z_]+=", ln)]
    assert not bad, "foreign lines in the client's stream: %r" % bad
    return dict(ln.split("=", 1) for ln in lines[:-1])


def assert_no_log_text(data):
    for t in LOG_TEXT:
        assert t not in data, "acceptd's log reached the client: %r" % data


def check_tcp_env(env, me, port):
    assert env.get("PROTO") == "TCP", env
    assert env.get("TCPREMOTEIP") == "127.0.0.1", env
    assert env.get("TCPREMOTEPORT") == str(me[1]), (env, me)
    assert env.get("TCPLOCALIP") == "127.0.0.1", env
    assert env.get("TCPLOCALPORT") == str(port), env
    assert env.get("ACCEPTD_LISTENER") == "127.0.0.1:%d" % port, env
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        assert k not in env, env


# --- xinetd -----------------------------------------------------------------

def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root (the inetds run services as user root)")


def start_xinetd(top, port, wait, server_args, wrap=()):
    """xinetd in the foreground with one service on 127.0.0.1:PORT.
    Returns (Daemon, path of its service log)."""
    if not XINETD:
        raise Skip("xinetd not installed")
    need_root()
    svclog = os.path.join(top, "service.log")
    conf = os.path.join(top, "xinetd.conf")
    with open(conf, "w") as f:
        f.write("""defaults
{
	log_type = FILE %s
	log_on_success = PID HOST EXIT
	log_on_failure = HOST
}

service acceptd-test
{
	type = UNLISTED
	port = %d
	bind = 127.0.0.1
	socket_type = stream
	protocol = tcp
	wait = %s
	user = root
	server = %s
	server_args = %s
}
""" % (svclog, port, "yes" if wait else "no", ACCEPTD, server_args))
    d = Daemon([], argv0=list(wrap) + [
        XINETD, "-dontfork", "-stayalive", "-f", conf,
        "-pidfile", os.path.join(top, "xinetd.pid"),
        "-filelog", os.path.join(top, "xinetd.log")], tree=True)
    try:
        wait_port("127.0.0.1", port)
    except AssertionError:
        raise AssertionError("xinetd did not listen:\n%s\n%s"
                             % (d.log(), read_text(top, "xinetd.log")))
    return d, svclog


def read_text(top, name):
    try:
        with open(os.path.join(top, name)) as f:
            return f.read()
    except OSError:
        return ""


def xinetd_exit_status(svclog, pid, timeout=10):
    """xinetd's EXIT record of PID (log_on_success EXIT): its exit status."""
    rx = re.compile(r"EXIT: acceptd-test status=(-?\d+) pid=%d\b" % pid)
    try:
        m = wait_until(lambda: rx.search(read_text(*os.path.split(svclog))), timeout,
                       "xinetd's EXIT record of pid %d" % pid)
    except AssertionError as e:
        raise AssertionError("%s:\n%s" % (e, read_text(*os.path.split(svclog))))
    return int(m.group(1))


@case
def xinetd_nowait_builtin_echo():
    top = tmpdir()
    port = free_port()
    start_xinetd(top, port, wait=False, server_args="-v -b echo")
    for n in range(3):
        data = b"line %d\n" % n + bytes(range(256)) * 64
        got = exchange("127.0.0.1:%d" % port, data)
        assert_no_log_text(got)
        assert got == data, "echo %d: %d bytes back, want %d" % (n, len(got), len(data))
    # Two at once: each gets an acceptd of its own.
    a = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = socket.create_connection(("127.0.0.1", port), timeout=10)
    with a, b:
        b.sendall(b"bee\n")
        a.sendall(b"ay\n")
        for s, want in ((b, b"bee\n"), (a, b"ay\n")):
            s.shutdown(socket.SHUT_WR)
            got = read_all(s)
            assert got == want, (got, want)


@case
def xinetd_nowait_program():
    top = tmpdir()
    port = free_port()
    _, svclog = start_xinetd(top, port, wait=False,
                             server_args="-v -- /bin/sh %s" % ENV_SH)
    pids = set()
    for _ in range(2):
        me, out = talk(("127.0.0.1", port))     # to EOF: the handler exited
        env = parse_env(out)
        assert_no_log_text(out)
        check_tcp_env(env, me, port)
        acceptd = int(env["PPID"])
        pids.add(acceptd)
        # One connection, then acceptd exits - cleanly.
        wait_until(lambda: pid_dead(acceptd), what="acceptd pid %d to exit after its "
                   "one connection" % acceptd)
        assert xinetd_exit_status(svclog, acceptd) == 0, read_text(top, "service.log")
    assert len(pids) == 2, pids


@case
def xinetd_nowait_logs_go_to_syslog():
    """Under inetd fds 0-2 are the client's socket: acceptd must log to
    syslog.  A private mount namespace puts a socket of ours at /dev/log
    for xinetd and everything it starts, so the lines can be read."""
    unshare = shutil.which("unshare")
    if not unshare:
        raise Skip("unshare not installed")
    top = tmpdir()
    dev = os.path.join(top, "dev")
    os.mkdir(dev)
    open(os.path.join(dev, "null"), "w").close()
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    port = free_port()
    # Inside the namespace only: our dir becomes /dev, with the real
    # /dev/null bound into it.  unshare and sh exec in place, so the pid
    # is xinetd's.
    wrap = [unshare, "-m", "sh", "-c",
            'mount --bind /dev/null "$0/null" && mount --rbind "$0" /dev && exec "$@"', dev]
    with sink:
        probe = subprocess.run(wrap + ["true"], capture_output=True, timeout=10)
        if probe.returncode != 0:
            raise Skip("cannot set up a mount namespace: %s"
                       % probe.stderr.decode(errors="replace").strip())
        sink.bind(os.path.join(dev, "log"))
        sink.settimeout(0.2)
        start_xinetd(top, port, wait=False, server_args="-v -- /bin/sh %s" % ENV_SH,
                     wrap=wrap)
        me, out = talk(("127.0.0.1", port))
        assert_no_log_text(out)
        env = parse_env(out)
        check_tcp_env(env, me, port)
        want = re.compile(r"acceptd\[%s\]: connection 127\.0\.0\.1:%d " % (env["PPID"], me[1]))
        seen = []
        deadline = time.monotonic() + 10
        while not any(want.search(m) for m in seen):
            assert time.monotonic() < deadline, "no syslog line %s; got:\n%s" % (
                want.pattern, "\n".join(seen))
            try:
                seen.append(sink.recv(4096).decode("utf-8", "replace"))
            except socket.timeout:
                pass
        assert any(re.search(r"acceptd\[%s\]: started acceptd" % env["PPID"], m)
                   for m in seen), seen


def wait_mode_checks(port):
    """One acceptd serves consecutive and concurrent connections.  Returns
    the acceptd pid."""
    pids = set()
    # Concurrent: both open before either is answered.
    a = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = socket.create_connection(("127.0.0.1", port), timeout=10)
    with a, b:
        for s, word in ((b, "bee"), (a, "ay")):
            s.sendall(word.encode() + b"\n")
            out = read_all(s)
            env = parse_env(out)
            assert env.get("LINE") == word, env
            check_tcp_env(env, s.getsockname(), port)
            pids.add(int(env["PPID"]))
    # Consecutive.
    for word in ("one", "two"):
        me, out = talk(("127.0.0.1", port), word.encode() + b"\n")
        env = parse_env(out)
        assert env.get("LINE") == word, env
        check_tcp_env(env, me, port)
        pids.add(int(env["PPID"]))
    assert len(pids) == 1, "wait mode: served by several processes %r" % pids
    return pids.pop()


def assert_restarts_on_demand(port, old):
    """After acceptd left, the inetd's listening socket (which acceptd
    shared, and must not have spoilt) starts a new acceptd on demand."""
    me, out = talk(("127.0.0.1", port), b"next\n")
    env = parse_env(out)
    assert env.get("LINE") == "next", env
    check_tcp_env(env, me, port)
    assert int(env["PPID"]) != old, "served by the stopped acceptd %d" % old


@case
def xinetd_wait_accept_loop():
    top = tmpdir()
    port = free_port()
    d, svclog = start_xinetd(top, port, wait=True,
                             server_args="-v -- /bin/sh %s read" % ENV_SH)
    acceptd = wait_mode_checks(port)
    assert proc_stat(acceptd)[1] == d.pid, "pid %d is not xinetd's child" % acceptd
    assert not pid_dead(acceptd), "acceptd left the accept loop"
    assert stop_pid(acceptd), "acceptd pid %d ignored SIGTERM" % acceptd
    assert xinetd_exit_status(svclog, acceptd) == 0, read_text(top, "service.log")
    assert_restarts_on_demand(port, acceptd)


# --- OpenBSD inetd ----------------------------------------------------------

def openbsd_inetd():
    """Path of an OpenBSD inetd binary (helpers/inetds.py: the installed
    one, else one unpacked from its .deb into the test cache)."""
    return inetds.openbsd_inetd()


def start_openbsd_inetd(top, line, probe=None):
    """OpenBSD inetd in debug mode (-d: foreground, log on stderr) with a
    one-line inetd.conf."""
    inetd = openbsd_inetd()
    need_root()
    conf = os.path.join(top, "inetd.conf")
    with open(conf, "w") as f:
        f.write(line + "\n")
    d = Daemon([conf], argv0=[inetd, "-d"], tree=True)
    try:
        if probe:
            probe()
    except AssertionError:
        raise AssertionError("inetd did not listen:\n" + d.log())
    return d


def inetd_reaped(d, pid, start=0):
    """OpenBSD inetd -d logs "PID reaped, status S" for each child."""
    m = d.wait_line(r"\b%d reaped, status (0x)?([0-9a-f]+)" % pid, start=start)
    return int(m.group(2), 16 if m.group(1) else 10)


def tcp_probe(port):
    return lambda: wait_port("127.0.0.1", port)


@case
def openbsd_inetd_nowait_builtin_echo():
    top = tmpdir()
    port = free_port()
    start_openbsd_inetd(
        top, "127.0.0.1:%d stream tcp nowait root %s acceptd -v -b echo" % (port, ACCEPTD),
        tcp_probe(port))
    for n in range(3):
        data = b"line %d\n" % n + bytes(range(256)) * 64
        got = exchange("127.0.0.1:%d" % port, data)
        assert_no_log_text(got)
        assert got == data, "echo %d: %d bytes back, want %d" % (n, len(got), len(data))


@case
def openbsd_inetd_nowait_program():
    top = tmpdir()
    port = free_port()
    d = start_openbsd_inetd(
        top, "127.0.0.1:%d stream tcp nowait root %s acceptd -v -- /bin/sh %s"
        % (port, ACCEPTD, ENV_SH), tcp_probe(port))
    pids = set()
    for _ in range(2):
        mark = len(d.lines)
        me, out = talk(("127.0.0.1", port))
        env = parse_env(out)
        assert_no_log_text(out)
        check_tcp_env(env, me, port)
        acceptd = int(env["PPID"])
        pids.add(acceptd)
        assert inetd_reaped(d, acceptd, start=mark) == 0, d.log()
    assert len(pids) == 2, pids


@case
def openbsd_inetd_wait_accept_loop():
    top = tmpdir()
    port = free_port()
    d = start_openbsd_inetd(
        top, "127.0.0.1:%d stream tcp wait root %s acceptd -v -- /bin/sh %s read"
        % (port, ACCEPTD, ENV_SH), tcp_probe(port))
    acceptd = wait_mode_checks(port)
    assert proc_stat(acceptd)[1] == d.pid, "pid %d is not inetd's child" % acceptd
    assert not pid_dead(acceptd), "acceptd left the accept loop"
    mark = len(d.lines)
    assert stop_pid(acceptd), "acceptd pid %d ignored SIGTERM" % acceptd
    assert inetd_reaped(d, acceptd, start=mark) == 0, d.log()
    assert_restarts_on_demand(port, acceptd)


def unix_probe(path):
    def connects():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            return s.connect_ex(path) == 0
    return lambda: wait_until(connects, 10, "a listener on " + path)


@case
def openbsd_inetd_unix_nowait_with_i():
    """A unix stream service: the connected AF_UNIX socket on fd 0 is
    taken only with -i."""
    top = tmpdir()
    path = os.path.join(top, "svc.sock")
    d = start_openbsd_inetd(
        top, "%s stream unix nowait root %s acceptd -i -v -- /bin/sh %s"
        % (path, ACCEPTD, ENV_SH), unix_probe(path))
    mark = len(d.lines)
    _, out = talk(path, family=socket.AF_UNIX)
    env = parse_env(out)
    assert_no_log_text(out)
    assert env.get("PROTO") == "UNIX", env
    assert env.get("UNIXREMOTEPID") == str(os.getpid()), env
    assert env.get("UNIXREMOTEEUID") == str(os.getuid()), env
    assert env.get("ACCEPTD_LISTENER") == "unix:" + path, env
    assert inetd_reaped(d, int(env["PPID"]), start=mark) == 0, d.log()


# --- fd 0 without an inetd --------------------------------------------------

def tcp_connection():
    """A loopback TCP connection as an inetd "nowait" entry hands it over:
    (the client's end, the accepted end for acceptd's fd 0)."""
    with socket.socket() as lst:
        lst.bind(("127.0.0.1", 0))
        lst.listen()
        client = socket.create_connection(lst.getsockname(), timeout=10)
        conn, _ = lst.accept()
    return client, conn


@case
def nowait_exit_status_is_the_handlers_or_128_plus_signal():
    """One connection: acceptd exits with its handler's status, and 128+N
    when the handler died of signal N (acceptd(8), EXIT STATUS)."""
    top = tmpdir()
    for script, want, sig in (("exit 5", 5, None),
                              ("kill -TERM $$", 128 + signal.SIGTERM, signal.SIGTERM),
                              ("kill -KILL $$", 128 + signal.SIGKILL, signal.SIGKILL),
                              ("ulimit -c 0; kill -SEGV $$", 128 + signal.SIGSEGV,
                               signal.SIGSEGV)):
        client, conn = tcp_connection()
        with client:
            d = Daemon(["-v", "--", "/bin/sh", "-c", script], stdin=conn, cwd=top)
            conn.close()
            rc = d.wait()
            client.settimeout(10)
            assert read_all(client) == b"", script
        assert rc == want, "handler %r: acceptd exited %r, want %d:\n%s" % (
            script, rc, want, d.log())
        if sig:
            assert re.search(r"end 127\.0\.0\.1:\d+ pid \d+ killed by signal %d " % sig,
                             d.log()), d.log()


@case
def nowait_builtin_worker_killed_is_128_plus_signal():
    """A built-in service on one connection: its worker is the handler, so
    a worker killed mid-connection makes the exit status 128+N too."""
    client, conn = tcp_connection()
    with client:
        d = Daemon(["-v", "-b", "echo"], stdin=conn)
        conn.close()
        client.settimeout(10)
        client.sendall(b"x")
        assert client.recv(1) == b"x"       # the worker holds it now
        worker = int(d.wait_line(r"worker 0 pid (\d+) ready").group(1))
        os.kill(worker, signal.SIGKILL)
        rc = d.wait()
    assert rc == 128 + signal.SIGKILL, "acceptd exited %r:\n%s" % (rc, d.log())


@case
def forced_inetd_serves_unix_socketpair():
    for args in (["-i", "-v"] + ["--", "/bin/sh", ENV_SH], ["-i", "-b", "echo"]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with ours:
            d = Daemon(args, stdin=theirs)
            theirs.close()
            ours.settimeout(10)
            if "echo" in args:
                ours.sendall(b"over a socketpair\n")
            ours.shutdown(socket.SHUT_WR)
            out = read_all(ours)
            rc = d.wait()
        assert rc == 0, "exit %r:\n%s" % (rc, d.log())
        assert "listening on" not in d.log(), d.log()
        if "echo" in args:
            assert out == b"over a socketpair\n", (out, d.log())
            continue
        env = parse_env(out)
        assert env.get("PROTO") == "UNIX", env
        assert env.get("UNIXREMOTEPID") == str(os.getpid()), env
        assert env.get("UNIXREMOTEEUID") == str(os.getuid()), env
        assert "TCPREMOTEIP" not in env, env
        assert env.get("PPID") == str(d.pid), env


@case
def unix_socketpair_without_i_is_not_inetd():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours:
        d = Daemon(["-v", "-l", "127.0.0.1:0", "-b", "echo"], stdin=theirs)
        theirs.close()
        addr, = d.listening()
        assert addr.startswith("127.0.0.1:") and not addr.endswith(":0"), addr
        ours.sendall(b"not for acceptd\n")
        assert exchange(addr, b"via tcp\n") == b"via tcp\n", d.log()
        assert "serving one connection" not in d.log(), d.log()
        assert d.stop() == 0, d.log()
        # acceptd is gone, so its fd 0 is closed: EOF (or a reset, as our
        # line was never read) - and nothing echoed.
        ours.settimeout(10)
        try:
            got = ours.recv(100)
        except ConnectionResetError:
            got = b""
        assert got == b"", "acceptd served the socketpair: %r\n%s" % (got, d.log())


@case
def udp_socket_on_fd0_is_answered_by_a_builtin():
    # inetd's "dgram udp wait" with acceptd's echo: the worker answers
    # (a PROGRAM that reads the socket: dgram.py).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        d = Daemon(["-b", "echo", "-w", "1"], stdin=u)
        d.wait_line(r"started acceptd")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(10)
            c.sendto(b"ping", ("127.0.0.1", port))
            assert c.recvfrom(100) == (b"ping", ("127.0.0.1", port))
        assert d.stop() == 0, d.log()
    assert "listening on udp:127.0.0.1:%d (fd " % port in d.log(), d.log()


@case
def udp_socket_on_fd0_with_fd_passing_is_an_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        d = Daemon(["--fd-passing", "--", "/bin/cat"], stdin=u)
        rc = d.wait()
    assert rc == 1, "exit %r, want 1:\n%s" % (rc, d.log())
    assert re.search(r"fd 0\b.*a datagram socket: --fd-passing workers take connections",
                     d.log()), d.log()
    assert "listening on" not in d.log(), d.log()


@case
def seqpacket_socket_on_fd0_is_an_error():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        d = Daemon(["-i", "--", "/bin/cat"], stdin=a)
        rc = d.wait()
    assert rc == 1, "exit %r, want 1:\n%s" % (rc, d.log())
    assert re.search(r"fd 0\b.*neither a stream nor a datagram socket", d.log()), d.log()
    assert "listening on" not in d.log(), d.log()


@case
def forced_inetd_without_socket_is_an_error():
    d = Daemon(["-i", "-b", "echo"])       # fd 0 is /dev/null
    rc = d.wait()
    assert rc == 1, "exit %r, want 1:\n%s" % (rc, d.log())
    assert re.search(r"fd 0\b.*not a socket", d.log()), d.log()


run()
