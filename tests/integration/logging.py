"""logging.py - where acceptd's log lines go and what they look like:
plain stderr, the journal's <N> prefixes, syslog when stderr is a socket
(never into a client's stream), escaping of foreign bytes, and -q (warnings
only)."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (ACCEPTD, Daemon, Skip, case, exchange, run,  # noqa: E402
                          tmpdir)

# Hands fds to acceptd as LISTEN_FDS, the way a service manager does.
LISTEN_EXEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers",
                           "src_listen_exec.py")

# Sets JOURNAL_STREAM to the dev:ino of whatever fd 2 is, as systemd does.
JOURNAL_WRAP = ["sh", "-c",
                'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"', "sh"]


@case
def plain_stderr_prefix():
    d = Daemon(["-l", "127.0.0.1:0"])
    d.listening()
    assert d.lines[0].startswith("acceptd: "), d.lines
    assert all(ln.startswith("acceptd: ") for ln in d.lines), d.log()


@case
def journal_level_prefixes():
    d = Daemon(["-v", "-l", "127.0.0.1:0"], argv0=JOURNAL_WRAP + [ACCEPTD])
    m = d.wait_line(r"^<5>listening on (\S+)$")
    assert exchange(m.group(1), b"x") == b"x"
    d.wait_line(r"^<6>connection 127\.0\.0\.1:\d+ on ")
    assert not any(ln.startswith("acceptd:") for ln in d.lines), d.log()


@case
def journal_stream_of_another_fd_is_ignored():
    d = Daemon(["-l", "127.0.0.1:0"], extra_env={"JOURNAL_STREAM": "1:1"})
    d.wait_line(r"^acceptd: listening on ")


@case
def socket_stderr_goes_to_syslog_not_the_stream():
    """Under inetd fd 2 is the client's socket.  Here fd 2 is one end of a
    socketpair: not one byte may arrive at the other end.  /dev/log is
    replaced, in a private mount namespace, by a socket this test reads."""
    t = tmpdir()
    devdir = os.path.join(t, "dev")
    os.mkdir(devdir)
    open(os.path.join(devdir, "null"), "w").close()
    logsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    logsock.bind(os.path.join(devdir, "log"))
    logsock.settimeout(10)
    ours, theirs = socket.socketpair()
    script = ('mount --bind /dev/null "$1/null" && mount --rbind "$1" /dev || exit 77\n'
              'shift; exec "$@"')
    p = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script, "sh", devdir, ACCEPTD, "-v",
         "-l", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=theirs)
    theirs.close()
    try:
        try:
            msg = logsock.recv(4096).decode()
        except socket.timeout:
            if p.poll() == 77:
                raise Skip("cannot bind-mount over /dev in a mount namespace")
            raise
        # "<29>" is LOG_DAEMON | LOG_NOTICE; glibc adds "acceptd[PID]: ".
        assert msg.startswith("<29>") and ("acceptd[%d]: " % p.pid) in msg, msg
        while "listening on" not in msg:
            msg = logsock.recv(4096).decode()
        addr = msg.rsplit("listening on ", 1)[1].strip()
        assert exchange(addr, b"ping") == b"ping"
        while "connection 127.0.0.1" not in msg:
            msg = logsock.recv(4096).decode()
        ours.setblocking(False)
        try:
            leaked = ours.recv(4096)
        except BlockingIOError:
            leaked = b""
        assert leaked == b"", leaked
    finally:
        if p.poll() is None:
            p.terminate()
        p.wait(10)
        ours.close()
        logsock.close()


@case
def quiet_drops_notices_but_keeps_warnings():
    """-q: "listening on", "started" and "stopped" go, a warning stays.
    The warning is --listen ignored under LISTEN_FDS (the helper hands
    over a listener as fd 3, the way a service manager does)."""
    for quiet in (False, True):
        with socket.socket() as lst:
            lst.bind(("127.0.0.1", 0))
            lst.listen(8)
            port = lst.getsockname()[1]
            d = Daemon((["-q"] if quiet else []) + ["-l", "127.0.0.1:0", "--", "/bin/cat"],
                       argv0=[sys.executable, LISTEN_EXEC, str(lst.fileno()), "--", ACCEPTD],
                       pass_fds=(lst.fileno(),))
        d.wait_line(r"^acceptd: warning: --listen ignored: ")
        # Served (the socket queues connects by itself: the echo is the proof).
        assert exchange("127.0.0.1:%d" % port, b"hush") == b"hush"
        assert d.stop() == 0, d.log()
        if quiet:
            assert d.lines == ["acceptd: warning: --listen ignored: sockets came from the "
                               "service manager"], d.log()
        else:
            for what in ("listening on 127.0.0.1:%d" % port, "started acceptd", "stopped: "):
                assert what in d.log(), (what, d.log())


@case
def foreign_bytes_are_escaped():
    """An fd name from the environment with a newline and an escape
    character is logged as \\x0a and \\x1b: one line, no terminal codes."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    port = lst.getsockname()[1]
    fd = lst.fileno()
    # The shell moves the socket to fd 3 and names itself, then becomes
    # acceptd (exec keeps the pid, so LISTEN_PID is right).
    wrap = ["sh", "-c", 'eval "exec 3<&%d %d<&-"; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"'
            % (fd, fd), "sh"]
    d = Daemon(["-l", "127.0.0.1:0"], argv0=wrap + [ACCEPTD], pass_fds=(fd,),
               extra_env={"LISTEN_FDNAMES": "ev\nil\x1b[31m"})
    lst.close()
    d.wait_line(r"^acceptd: listening on ev\\x0ail\\x1b\[31m \(fd 3\)$")
    assert exchange("127.0.0.1:%d" % port, b"esc") == b"esc"
    assert not any("\x1b" in ln for ln in d.lines), d.log()


@case
def a_unix_clients_path_cannot_forge_log_lines():
    """A client bound to a path holding a newline and an ESC byte: its
    path is escaped in the connection line (-v) and in a refusal line
    (the default level), so it can neither start a line of its own nor
    carry terminal codes."""
    d_ = tmpdir()
    lpath = os.path.join(d_, "l")
    d = Daemon(["-v", "-c", "5", "-C", "1", "-l", "unix:" + lpath, "--", "/bin/cat"])
    d.listening()
    evil = os.path.join(d_, "x\nacceptd: FORGED \x1b[31mred")
    clients = []
    for i in range(2):       # the second is over -C 1: a refusal line
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.bind(evil + str(i))
        c.connect(lpath)
        clients.append(c)
    d.wait_line(r"unix:.*x\\x0aacceptd: FORGED \\x1b\[31mred1: source already holds")
    d.wait_line(r"unix:.*x\\x0aacceptd: FORGED \\x1b\[31mred0")
    assert not any(ln.startswith("acceptd: FORGED") for ln in d.lines), d.log()
    assert not any("\x1b" in ln for ln in d.lines), d.log()
    for c in clients:
        c.close()
    assert d.stop() == 0


run()
