"""sources.py - where acceptd's sockets come from: the systemd LISTEN_FDS
protocol (driven by the real systemd-socket-activate, and by a tiny exec
wrapper for the malformed cases), inherited unix sockets, SIGTERM with
inherited listeners, and the dual-stack listener under bindv6only=1.

systemd-socket-activate binds first and execs acceptd in the same pid only
when the first connection arrives, so each case waits for its own
"Listening on ADDR as FD." line, connects, and then reads acceptd's log."""
import errno
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (sock_inodes, ACCEPTD, Daemon, Skip, case, free_port, has_ipv6,  # noqa: E402
                          closing_fds, read_all, run, talk, tmpdir)

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
ENV_SH = os.path.join(HELPERS, "src_env.sh")
LISTEN_EXEC = os.path.join(HELPERS, "src_listen_exec.py")
DUALSTACK = os.path.join(HELPERS, "src_dualstack.py")
ENV_HANDLER = ["--", "/bin/sh", ENV_SH]
SSA = shutil.which("systemd-socket-activate")
LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


# --- helpers local to this file --------------------------------------------

def need_ssa():
    if not SSA:
        raise Skip("systemd-socket-activate not installed")


def ssa(ssa_args, acceptd_args):
    """systemd-socket-activate SSA_ARGS -- acceptd ACCEPTD_ARGS.  With -a
    it starts an acceptd per connection: the harness stops those too."""
    return Daemon(acceptd_args, argv0=[SSA] + list(ssa_args) + ["--", ACCEPTD],
                  tree="-a" in ssa_args)


def ssa_ready(d, what, fd):
    """Wait until systemd-socket-activate has bound WHAT as FD."""
    d.wait_line(r"Listening on %s as %d\." % (re.escape(what), fd))


def two_ports():
    p1 = free_port()
    p2 = free_port()
    while p2 == p1:
        p2 = free_port()
    return p1, p2


def parse_env(out):
    """src_env.sh's report -> dict.  It must be complete (END), and every
    line the handler's: a stray log line in the stream fails here."""
    lines = out.decode("utf-8", "replace").splitlines()
    assert lines and lines[-1] == "END", "handler output incomplete: %r" % out
    bad = [ln for ln in lines[:-1] if not re.match(r"[A-Z_]+=", ln)]
    assert not bad, "foreign lines in the client's stream: %r" % bad
    return dict(ln.split("=", 1) for ln in lines[:-1])


def assert_no_listen_vars(env):
    leaked = [k for k in LISTEN_VARS if k in env]
    assert not leaked, "handler inherited %s: %r" % (leaked, env)


def listening_ports(pid):
    """TCP ports of the listening sockets that process PID holds open."""
    inodes = {str(i) for i in sock_inodes(pid)}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            col = row.split()
            if col[3] == "0A" and col[9] in inodes:     # 0A: TCP_LISTEN
                ports.add(int(col[1].rsplit(":", 1)[1], 16))
    return ports


def listen_exec(fds, acceptd_args, pid="self", nfds=None, names=None, stdin=None):
    """acceptd with FDS as its fds 3.. and LISTEN_* set the systemd way."""
    argv0 = [sys.executable, LISTEN_EXEC, "--pid", pid]
    if nfds is not None:
        argv0 += ["--fds", nfds]
    if names is not None:
        argv0 += ["--names", names]
    argv0 += [str(fd) for fd in fds] + ["--", ACCEPTD]
    return Daemon(acceptd_args, argv0=argv0, pass_fds=tuple(fds), stdin=stdin)


def listeners_in_log(d):
    return re.findall(r"listening on (\S+)", d.log())


# --- systemd-socket-activate, listening sockets ------------------------------

@case
def ssa_two_named_listeners():
    need_ssa()
    p1, p2 = two_ports()
    d = ssa(["-l", "127.0.0.1:%d" % p1, "-l", "127.0.0.1:%d" % p2, "--fdname=alpha:beta"],
            ["-v"] + ENV_HANDLER)
    ssa_ready(d, "127.0.0.1:%d" % p2, 4)
    assert "started acceptd" not in d.log(), d.log()
    # This connection is what makes systemd-socket-activate exec acceptd:
    # it waits in the backlog and must still be served.
    me, out = talk(("127.0.0.1", p1))
    env = parse_env(out)
    assert d.listening(2) == ["alpha", "beta"], d.log()
    d.wait_line(r"listening on alpha \(fd 3\)")
    d.wait_line(r"listening on beta \(fd 4\)")
    assert env.get("ACCEPTD_LISTENER") == "alpha", env
    assert env.get("TCPLOCALPORT") == str(p1), env
    assert env.get("TCPREMOTEIP") == "127.0.0.1", env
    assert env.get("TCPREMOTEPORT") == str(me[1]), (env, me)
    assert env.get("PPID") == str(d.pid), "handler not spawned by the exec'd acceptd: %r" % env
    assert_no_listen_vars(env)
    me, out = talk(("127.0.0.1", p2))
    env = parse_env(out)
    assert env.get("ACCEPTD_LISTENER") == "beta", env
    assert env.get("TCPLOCALPORT") == str(p2), env
    assert env.get("TCPREMOTEPORT") == str(me[1]), (env, me)
    assert_no_listen_vars(env)
    # Inherited sockets only: acceptd must not have bound 8080 (or anything).
    assert listeners_in_log(d) == ["alpha", "beta"], d.log()
    held = listening_ports(d.pid)
    assert held == {p1, p2}, "acceptd holds listeners on %r, want {%d, %d}" % (held, p1, p2)
    assert d.stop() == 0, d.log()


@case
def ssa_builtin_echo_on_named_listeners():
    need_ssa()
    p1, p2 = two_ports()
    d = ssa(["-l", "127.0.0.1:%d" % p1, "-l", "127.0.0.1:%d" % p2, "--fdname=alpha:beta"],
            ["-b", "echo"])
    ssa_ready(d, "127.0.0.1:%d" % p2, 4)
    _, got = talk(("127.0.0.1", p1), b"first, via the backlog\n")
    assert got == b"first, via the backlog\n", (got, d.log())
    assert d.listening(2) == ["alpha", "beta"], d.log()
    for port in (p1, p2):
        _, got = talk(("127.0.0.1", port), b"x" * 100000)
        assert got == b"x" * 100000, (port, len(got), d.log())
    assert d.stop() == 0, d.log()


@case
def ssa_unnamed_listener_is_named_by_address():
    need_ssa()
    p1, p2 = two_ports()
    args = ["-l", "127.0.0.1:%d" % p1, "-l", "127.0.0.1:%d" % p2]
    p6 = free_port(socket.AF_INET6) if has_ipv6() else None
    if p6:
        args += ["-l", "[::1]:%d" % p6]
    d = ssa(args, ENV_HANDLER)
    if p6:
        ssa_ready(d, "[::1]:%d" % p6, 5)
    else:
        ssa_ready(d, "127.0.0.1:%d" % p2, 4)
    _, out = talk(("127.0.0.1", p2))
    assert parse_env(out).get("ACCEPTD_LISTENER") == "127.0.0.1:%d" % p2, out
    _, out = talk(("127.0.0.1", p1))
    assert parse_env(out).get("ACCEPTD_LISTENER") == "127.0.0.1:%d" % p1, out
    d.wait_line(r"listening on 127\.0\.0\.1:%d \(fd 3\)" % p1)
    d.wait_line(r"listening on 127\.0\.0\.1:%d \(fd 4\)" % p2)
    if p6:
        me, out = talk(("::1", p6), family=socket.AF_INET6)
        env = parse_env(out)
        assert env.get("ACCEPTD_LISTENER") == "[::1]:%d" % p6, env
        assert env.get("TCPREMOTEIP") == "::1" and env.get("TCPLOCALIP") == "::1", env
        assert env.get("TCPREMOTEPORT") == str(me[1]), env
        d.wait_line(r"listening on \[::1\]:%d \(fd 5\)" % p6)
    assert listening_ports(d.pid) == {p for p in (p1, p2, p6) if p}, d.log()
    assert d.stop() == 0, d.log()


@case
def ssa_inherited_unix_listener():
    need_ssa()
    top = tmpdir()
    path = os.path.join(top, "sock")
    d = ssa(["-l", path], ["-v"] + ENV_HANDLER)
    ssa_ready(d, path, 3)
    _, out = talk(path, family=socket.AF_UNIX)
    env = parse_env(out)
    d.wait_line(r"listening on unix:%s \(fd 3\)" % re.escape(path))
    assert env.get("ACCEPTD_LISTENER") == "unix:" + path, env
    assert env.get("PROTO") == "UNIX", env
    assert env.get("UNIXREMOTEPID") == str(os.getpid()), env
    assert env.get("UNIXREMOTEEUID") == str(os.getuid()), env
    assert env.get("UNIXREMOTEEGID") == str(os.getgid()), env
    assert "TCPREMOTEIP" not in env, env
    assert_no_listen_vars(env)
    assert d.stop() == 0, d.log()
    # Not acceptd's socket: it must not unlink it.
    assert os.path.lexists(path), "acceptd removed the inherited socket file " + path
    assert stat.S_ISSOCK(os.lstat(path).st_mode), "socket file replaced"


@case
def ssa_sigterm_exits_0():
    need_ssa()
    port = free_port()
    d = ssa(["-l", "127.0.0.1:%d" % port], ["-b", "echo"])
    ssa_ready(d, "127.0.0.1:%d" % port, 3)
    _, got = talk(("127.0.0.1", port), b"ping\n")
    assert got == b"ping\n", (got, d.log())
    d.listening()
    # systemd-socket-activate execs acceptd in its own pid.
    d.signal(signal.SIGTERM)
    assert d.wait() == 0, d.log()
    d.wait_line(r"stopped: ")


@case
def ssa_sigterm_keeps_inherited_listener_open():
    """SIGTERM closes only the listeners acceptd created: an inherited one
    stays open (a new connect still completes into the backlog) but is no
    longer served while the running connection drains."""
    need_ssa()
    port = free_port()
    d = ssa(["-l", "127.0.0.1:%d" % port], ["-v", "--", "/bin/sh", ENV_SH, "read"])
    ssa_ready(d, "127.0.0.1:%d" % port, 3)
    a = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = socket.socket()
    with a, b:
        d.wait_line(r"connection 127\.0\.0\.1:%d " % a.getsockname()[1])
        d.signal(signal.SIGTERM)
        d.wait_line(r"SIGTERM: stopping")
        b.settimeout(10)
        try:
            b.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            raise AssertionError("inherited listener was closed on SIGTERM:\n" + d.log())
        b.sendall(b"late\n")
        a.sendall(b"drained\n")
        env = parse_env(read_all(a))
        assert env.get("LINE") == "drained", env
        assert d.wait() == 0, d.log()
        try:
            late = read_all(b)
        except ConnectionResetError:
            late = b""
        assert b"LINE=late" not in late, "served a connection while stopping: %r" % late
        assert len(re.findall(r"connection 127\.0\.0\.1:\d+ ", d.log())) == 1, d.log()


# --- systemd-socket-activate, connected sockets (Accept=yes) -----------------

def wait_child_exit(d, pid, start=0):
    """systemd-socket-activate logs each child it reaps; acceptd (that
    child) must exit 0 once its one connection is done."""
    m = d.wait_line(r"Child %s died with code (\d+)" % pid, start=start)
    assert m.group(1) == "0", "acceptd pid %s exited %s:\n%s" % (pid, m.group(1), d.log())


@case
def ssa_accept_yes_one_connection_per_acceptd():
    need_ssa()
    port = free_port()
    d = ssa(["-a", "-l", "127.0.0.1:%d" % port], ["-v", "--", "/bin/sh", ENV_SH, "read"])
    accept_yes_checks(d, port)


def accept_yes_checks(d, port):
    ssa_ready(d, "127.0.0.1:%d" % port, 3)
    # Two at once: each must get an acceptd of its own.
    a = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = socket.create_connection(("127.0.0.1", port), timeout=10)
    envs = []
    with a, b:
        for s, word in ((b, b"bee"), (a, b"ay")):
            s.sendall(word + b"\n")
            env = parse_env(read_all(s))       # to EOF: the handler exited
            assert env.get("LINE") == word.decode(), env
            assert env.get("TCPREMOTEIP") == "127.0.0.1", env
            assert env.get("TCPREMOTEPORT") == str(s.getsockname()[1]), env
            assert env.get("TCPLOCALPORT") == str(port), env
            assert env.get("ACCEPTD_LISTENER") == "127.0.0.1:%d" % port, env
            assert_no_listen_vars(env)
            envs.append(env)
    assert envs[0]["PPID"] != envs[1]["PPID"], envs
    for env in envs:
        wait_child_exit(d, env["PPID"])
    assert len(re.findall(r"serving one connection on fd 3", d.log())) == 2, d.log()
    # And once more after both are gone.
    me, out = talk(("127.0.0.1", port), b"again\n")
    env = parse_env(out)
    assert env.get("LINE") == "again" and env.get("TCPREMOTEPORT") == str(me[1]), env
    wait_child_exit(d, env["PPID"])


@case
def ssa_accept_yes_builtin_echo():
    need_ssa()
    port = free_port()
    d = ssa(["-a", "-l", "127.0.0.1:%d" % port], ["-b", "echo"])
    ssa_ready(d, "127.0.0.1:%d" % port, 3)
    for n in range(2):
        mark = len(d.lines)
        data = b"echo %d\n" % n + b"y" * 50000
        _, got = talk(("127.0.0.1", port), data)
        assert got == data, (len(got), d.log())
        m = d.wait_line(r"Child (\d+) died with code (\d+)", start=mark)
        assert m.group(2) == "0", d.log()


@case
def ssa_accept_yes_unix():
    need_ssa()
    top = tmpdir()
    path = os.path.join(top, "sock")
    d = ssa(["-a", "-l", path], ENV_HANDLER)
    ssa_ready(d, path, 3)
    _, out = talk(path, family=socket.AF_UNIX)
    env = parse_env(out)
    assert env.get("PROTO") == "UNIX", env
    assert env.get("UNIXREMOTEPID") == str(os.getpid()), env
    assert env.get("ACCEPTD_LISTENER") == "unix:" + path, env
    wait_child_exit(d, env["PPID"])


def inetd_style(acceptd_args, program):
    """systemd-socket-activate --inetd -a: the connection on fds 0 and 1."""
    need_ssa()
    port = free_port()
    with ssa(["--inetd", "-a", "-l", "127.0.0.1:%d" % port], acceptd_args) as d:
        inetd_style_checks(d, port, program)


def inetd_style_checks(d, port, program):
    ssa_ready(d, "127.0.0.1:%d" % port, 3)
    for n in range(2):
        mark = len(d.lines)
        if program:
            me, out = talk(("127.0.0.1", port))
            env = parse_env(out)
            assert env.get("PROTO") == "TCP", env
            assert env.get("TCPREMOTEIP") == "127.0.0.1", env
            assert env.get("TCPREMOTEPORT") == str(me[1]), (env, me)
            assert env.get("TCPLOCALPORT") == str(port), env
            assert_no_listen_vars(env)
            wait_child_exit(d, env["PPID"], start=mark)
        else:
            data = b"echo %d\n" % n
            _, got = talk(("127.0.0.1", port), data)
            assert got == data, (got, d.log())
            m = d.wait_line(r"Child (\d+) died with code (\d+)", start=mark)
            assert m.group(2) == "0", d.log()
    assert len(re.findall(r"serving one connection on fd", d.log())) == 2, d.log()
    assert "listening on" not in d.log(), d.log()


@case
def ssa_inetd_style_builtin_echo():
    inetd_style(["-v", "-b", "echo"], program=False)


@case
def ssa_inetd_style_program():
    inetd_style(["-v"] + ENV_HANDLER, program=True)


@case
def ssa_inetd_style_forced_with_i():
    inetd_style(["-i", "-v", "-b", "echo"], program=False)
    inetd_style(["-i", "-v"] + ENV_HANDLER, program=True)


# --- LISTEN_FDS by hand: what is not a listening stream socket ---------------

@case
def listen_fds_udp_and_tcp_sockets_with_a_builtin():
    # ListenDatagram= and ListenStream= in one unit, the daytime built-in:
    # a worker answers the datagrams, the pool the connections.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
        u.bind(("127.0.0.1", 0))
        t.bind(("127.0.0.1", 0))
        t.listen(8)
        d = listen_exec([u.fileno(), t.fileno()], ["-b", "daytime", "-l", "127.0.0.1:0"])
        d.wait_line(r"started acceptd")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(10)
            c.sendto(b"", u.getsockname())
            got, _ = c.recvfrom(100)
        with socket.create_connection(t.getsockname(), timeout=10) as c:
            line = c.recv(100)
        assert d.stop() == 0, d.log()
    # Both daytime lines, seconds apart at most: the same year and zone.
    assert got.endswith(b"\r\n") and line.endswith(b"\r\n"), (got, line)
    assert got.split()[-2:] == line.split()[-2:], (got, line)
    assert re.search(r"listening on udp:127\.0\.0\.1:\d+ \(fd 3\)", d.log()), d.log()


@case
def listen_fds_udp_socket_with_fd_passing_is_an_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        d = listen_exec([u.fileno()], ["-l", "127.0.0.1:0", "--fd-passing", "--", "/bin/cat"])
        rc = d.wait()
    assert rc == 1, "exit %r, want 1:\n%s" % (rc, d.log())
    assert re.search(r"fd 3\b.*a datagram socket: --fd-passing", d.log()), d.log()
    assert not listeners_in_log(d), "fell back to its own listener:\n" + d.log()


@case
def listen_fds_seqpacket_socket_is_an_error():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        d = listen_exec([a.fileno()], ["-l", "127.0.0.1:0", "--", "/bin/cat"])
        rc = d.wait()
    assert rc == 1, "exit %r, want 1:\n%s" % (rc, d.log())
    assert re.search(r"fd 3\b.*neither a stream nor a datagram socket", d.log()), d.log()
    assert not listeners_in_log(d), "fell back to its own listener:\n" + d.log()


@case
def listen_fds_pipe_is_an_error():
    r, w = os.pipe()
    with closing_fds(r, w):
        d = listen_exec([r], ["-l", "127.0.0.1:0"])
        rc = d.wait()
    assert rc == 1, "exit %r, want 1:\n%s" % (rc, d.log())
    assert re.search(r"fd 3\b.*not a socket", d.log()), d.log()
    assert not listeners_in_log(d), "fell back to its own listener:\n" + d.log()


@case
def listen_pid_of_another_process_is_ignored():
    # A UDP socket on fd 3 would be fatal if acceptd took it as its own.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        d = listen_exec([u.fileno()], ["-l", "127.0.0.1:0"] + ENV_HANDLER, pid="1")
        addr, = d.listening()
    assert addr.startswith("127.0.0.1:") and not addr.endswith(":0"), addr
    host, port = addr.rsplit(":", 1)
    _, out = talk((host, int(port)))
    env = parse_env(out)
    assert env.get("ACCEPTD_LISTENER") == addr, env
    assert_no_listen_vars(env)
    assert "fd 3" not in d.log() and "warning" not in d.log(), d.log()
    assert d.stop() == 0, d.log()


def garbage_case(pid, nfds):
    with socket.socket() as inherited:
        inherited.bind(("127.0.0.1", 0))
        inherited.listen()
        iport = inherited.getsockname()[1]
        d = listen_exec([inherited.fileno()], ["-l", "127.0.0.1:0"] + ENV_HANDLER,
                        pid=pid, nfds=nfds)
        addr, = d.listening()
    d.wait_line(r"warning: .*LISTEN_(FDS|PID)")
    host, port = addr.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) not in (0, iport), addr
    _, out = talk((host, int(port)))
    assert_no_listen_vars(parse_env(out))
    assert d.stop() == 0, d.log()


@case
def listen_fds_garbage_warns_and_binds_own():
    garbage_case("self", "3x")


@case
def listen_pid_garbage_warns_and_binds_own():
    garbage_case("12ab", "1")


# --- the order of the sources ------------------------------------------------

def tcp_listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


@case
def systemd_source_wins_over_fd0():
    """LISTEN_FDS for us and a listening socket on fd 0: the service
    manager's socket is served, fd 0 is not touched."""
    sd, sd_port = tcp_listener()
    fd0, fd0_port = tcp_listener()
    with sd, fd0:
        d = listen_exec([sd.fileno()], ["-v"] + ENV_HANDLER, names="web", stdin=fd0)
        assert d.listening() == ["web"], d.log()
        me, out = talk(("127.0.0.1", sd_port))
        env = parse_env(out)
        assert env.get("ACCEPTD_LISTENER") == "web", env
        assert env.get("TCPREMOTEPORT") == str(me[1]), env
        assert_no_listen_vars(env)
        # (fd 0 stays open as acceptd's stdin; nothing else of its own.)
        assert listening_ports(d.pid) - {fd0_port} == {sd_port}, d.log()
        # A connect to the fd 0 socket completes into its backlog, but
        # nobody accepts it: acceptd exits and it is still queued there.
        late = socket.create_connection(("127.0.0.1", fd0_port), timeout=10)
        with late:
            assert d.stop() == 0, d.log()
            fd0.settimeout(0)
            conn, peer = fd0.accept()      # BlockingIOError if acceptd took it
            conn.close()
            assert peer == late.getsockname(), (peer, late.getsockname())
        assert len(re.findall(r"connection 127\.0\.0\.1:\d+ ", d.log())) == 1, d.log()


@case
def listen_option_ignored_with_a_warning_under_listen_fds():
    """Sockets from the service manager: --listen is ignored with a
    warning, and nothing is bound where it pointed (TCP or unix)."""
    sd, sd_port = tcp_listener()
    unused = free_port()            # not sd_port: that one is taken now
    path = os.path.join(tmpdir(), "ignored.sock")
    with sd:
        d = listen_exec([sd.fileno()], ["-l", "127.0.0.1:%d" % unused, "-l", "unix:" + path]
                        + ENV_HANDLER)
        d.wait_line(r"^acceptd: warning: --listen ignored: sockets came from the service "
                    r"manager$")
        d.listening()
        assert listeners_in_log(d) == ["127.0.0.1:%d" % sd_port], d.log()
        me, out = talk(("127.0.0.1", sd_port))
        env = parse_env(out)
        assert env.get("TCPREMOTEPORT") == str(me[1]), env
        assert env.get("ACCEPTD_LISTENER") == "127.0.0.1:%d" % sd_port, env
        assert listening_ports(d.pid) == {sd_port}, (listening_ports(d.pid), d.log())
        with socket.socket() as probe:
            probe.settimeout(5)
            assert probe.connect_ex(("127.0.0.1", unused)) == errno.ECONNREFUSED, \
                "something listens on the ignored --listen port %d:\n%s" % (unused, d.log())
        assert not os.path.exists(path), "the ignored unix --listen was bound:\n" + d.log()
        assert d.stop() == 0, d.log()


@case
def forced_inetd_ignores_listen_fds():
    """-i: fd 0 is the source even when LISTEN_FDS names us, and LISTEN_*
    still does not reach the handler."""
    sd, sd_port = tcp_listener()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with sd, ours:
        d = listen_exec([sd.fileno()], ["-i", "-v"] + ENV_HANDLER, stdin=theirs)
        theirs.close()
        ours.settimeout(10)
        ours.shutdown(socket.SHUT_WR)
        env = parse_env(read_all(ours))
        assert d.wait() == 0, d.log()
        assert env.get("PROTO") == "UNIX", env
        assert env.get("UNIXREMOTEPID") == str(os.getpid()), env
        assert_no_listen_vars(env)
        assert "listening on" not in d.log(), d.log()
        # The LISTEN_FDS socket was never accepted from.
        late = socket.create_connection(("127.0.0.1", sd_port), timeout=10)
        with late:
            sd.settimeout(0)
            conn, _ = sd.accept()
            conn.close()


# --- the default dual-stack listener under bindv6only=1 -----------------------

@case
def dual_stack_despite_bindv6only():
    unshare, ip, sysctl = (shutil.which(p) for p in ("unshare", "ip", "sysctl"))
    if not (unshare and ip and sysctl):
        raise Skip("needs unshare, ip and sysctl")
    if not os.path.exists("/proc/sys/net/ipv6"):
        raise Skip("no IPv6 in this kernel")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        raise Skip("cannot create a network namespace: %s"
                   % probe.stderr.decode(errors="replace").strip())
    setup = ('ip link set lo up && sysctl -qw net.ipv6.bindv6only=1 && exec "$@"')
    env = dict(os.environ, ACCEPTD=ACCEPTD)
    # unshare and sh exec in place: the pid is the Python script's.
    p = subprocess.Popen([unshare, "-n", "sh", "-c", setup, "sh", sys.executable, DUALSTACK],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = p.communicate(timeout=35)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)   # it stops its acceptd by pid on the way out
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        raise AssertionError("dual-stack scenario timed out:\n%s%s"
                             % (out.decode(errors="replace"), err.decode(errors="replace")))
    text = out.decode(errors="replace") + err.decode(errors="replace")
    assert p.returncode == 0 and "DUALSTACK OK" in out.decode(), text
    for line in out.decode().splitlines():
        print("# " + line, flush=True)


run()
