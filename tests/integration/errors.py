"""errors.py - exit status and messages: usage errors exit 2 with one
stderr line naming the option and the value; start-up failures exit 1
naming the address or fd and the OS error; an fd 0 or LISTEN_* that is
not a socket source is no error at all; -h and -V."""
import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (ACCEPTD, Daemon, Skip, case, closing_all,  # noqa: E402
                          closing_fds, exchange, run, run_acceptd, tmpdir, write_script)


def mentions(msg, word):
    """word appears in msg as a whole token (not inside a longer word or
    number: '0' is not found in '1000000', '-c' not in '--max-conns')."""
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", msg) is not None


def usage_error(args, names, value):
    rc, out, err = run_acceptd(args)
    assert rc == 2, "exit %d, expected 2; stderr %s" % (rc, err)
    assert len(err) == 1, "expected one stderr line, got %s" % err
    assert out == "", "stdout: %r" % out
    msg = err[0]
    assert msg.startswith("acceptd: "), msg
    assert any(mentions(msg, n) for n in names), "%r does not name %s" % (msg, names)
    if value is not None:
        assert mentions(msg, value), "%r does not name the value %r" % (msg, value)
    return msg


# name, arguments, the option as it may be named, the offending value
USAGE = [
    ("max_conns_zero", ["-c", "0"], ["-c", "--max-conns"], "0"),
    ("max_conns_negative", ["-c", "-1"], ["-c", "--max-conns"], "-1"),
    ("max_conns_not_number", ["-c", "abc"], ["-c", "--max-conns"], "abc"),
    ("max_conns_overflow", ["-c", "99999999999999999999"], ["-c", "--max-conns"],
     "99999999999999999999"),
    ("max_conns_long_form", ["--max-conns=12x"], ["--max-conns"], "12x"),
    ("backlog_zero", ["--backlog", "0"], ["--backlog"], "0"),
    ("drain_not_number", ["--drain", "1s"], ["--drain"], "1s"),
    ("socket_mode_not_octal", ["--socket-mode", "0999"], ["--socket-mode"], "0999"),
    ("listen_short_ipv4", ["-l", "1.2.3:80"], ["-l", "--listen"], "1.2.3:80"),
    ("listen_octal_ipv4", ["-l", "01.2.3.4:80"], ["-l", "--listen"], "01.2.3.4:80"),
    ("listen_ipv6_no_colon", ["-l", "[::1]80"], ["-l", "--listen"], "[::1]80"),
    ("listen_ipv6_no_brackets", ["-l", "::1:80"], ["-l", "--listen"], "::1:80"),
    ("listen_port_too_big", ["-l", "65536"], ["-l", "--listen"], "65536"),
    ("listen_host_port_too_big", ["-l", "127.0.0.1:65536"], ["-l", "--listen"],
     "127.0.0.1:65536"),
    ("listen_empty_unix_path", ["-l", "unix:"], ["-l", "--listen"], "unix:"),
    ("builtin_unknown", ["-b", "nosuch"], ["-b", "--builtin"], "nosuch"),
    ("unknown_long_option", ["--nosuch"], ["--nosuch"], None),
    ("unknown_short_option", ["-Z"], ["-Z"], None),
    ("builtin_and_program", ["-b", "echo", "--", "/bin/cat"], ["-b", "--builtin"],
     "/bin/cat"),
    ("missing_value", ["-c"], ["-c", "--max-conns"], None),
    ("missing_value_long", ["--listen"], ["-l", "--listen"], None),
    ("inetd_and_listen", ["-i", "-l", "127.0.0.1:0"], ["-i", "--inetd"], None),
    # An abstract socket has no file, so no mode to set: refused, not ignored.
    ("socket_mode_on_abstract", ["-l", "unix:@acceptd-x", "--socket-mode", "0600"],
     ["--socket-mode"], "unix:@acceptd-x"),
    # ...nor an owner; and the owner's names are looked up before any socket
    ("socket_user_on_abstract", ["-l", "unix:@acceptd-x", "--socket-user", "nobody"],
     ["--socket-user"], "unix:@acceptd-x"),
    ("socket_group_on_abstract", ["--socket-group", "0", "-l", "unix:@acceptd-x"],
     ["--socket-group"], "unix:@acceptd-x"),
    ("socket_user_unknown", ["--socket-user", "acceptd-no-such-user"], ["--socket-user"],
     "acceptd-no-such-user"),
    ("socket_group_unknown", ["--socket-group", "acceptd-no-such-group"], ["--socket-group"],
     "acceptd-no-such-group"),
    ("socket_user_empty", ["--socket-user="], ["--socket-user"], None),
]


def _usage_case(name, args, names, value):
    def fn():
        msg = usage_error(args, names, value)
        if name == "missing_value":
            assert "missing" in msg, msg
        if name == "inetd_and_listen":
            assert "--listen" in msg, msg
    fn.__name__ = "usage_" + name
    case(fn)


for _u in USAGE:
    _usage_case(*_u)


@case
def program_not_found():
    usage_error(["-l", "127.0.0.1:0", "/nonexistent/handler"], ["/nonexistent/handler"], None)


@case
def program_not_in_path():
    rc, _out, err = run_acceptd(["-l", "127.0.0.1:0", "acceptd-no-such-handler-xyz"],
                                extra_env={"PATH": tmpdir()})
    assert rc == 2 and len(err) == 1, (rc, err)
    assert mentions(err[0], "acceptd-no-such-handler-xyz"), err


@case
def program_not_executable():
    path = write_script(tmpdir(), "noexec", "#!/bin/sh\necho hi\n", mode=0o644)
    usage_error(["-l", "127.0.0.1:0", path], [path], None)


def startup_failure(args, *needles, **kw):
    rc, _out, err = run_acceptd(args, **kw)
    assert rc == 1, "exit %d, expected 1; stderr %s" % (rc, err)
    assert err, "no message"
    assert not any("started acceptd" in ln for ln in err), err
    for n in needles:
        assert n in err[-1], "%r not in %r" % (n, err[-1])
    return err


@case
def port_in_use():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        startup_failure(["-l", "127.0.0.1:%d" % port],
                        "127.0.0.1:%d" % port, "Address already in use")


@case
def port_in_use_second_listener():
    # The first listener bound fine; the second fails: still exit 1.
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        startup_failure(["-l", "127.0.0.1:0", "-l", "127.0.0.1:%d" % port],
                        "127.0.0.1:%d" % port, "Address already in use")


@case
def unix_path_of_a_live_listener_with_a_full_backlog():
    # The stale-socket probe must not block on a backlog that is full:
    # "in use", exit 1 at once, naming the path.
    path = os.path.join(tmpdir(), "busy.sock")
    clients = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(path)
        other.listen(0)
        while True:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            clients.append(c)
            try:
                c.connect(path)
            except BlockingIOError:
                break
            assert len(clients) < 100, "the backlog never filled"
        with closing_all(clients):
            startup_failure(["-l", "unix:" + path], path, "Address already in use")
        assert os.path.exists(path), "the live listener's file was removed"


@case
def unix_dir_missing():
    startup_failure(["-l", "unix:/nonexistent-dir/x.sock"],
                    "/nonexistent-dir/x.sock", "No such file or directory")


@case
def inetd_stdin_pipe():
    r, w = os.pipe()
    with closing_fds(r, w):
        startup_failure(["-i"], "fd 0 (--inetd): not a socket", stdin=r)


@case
def inetd_stdin_devnull():
    startup_failure(["-i"], "fd 0 (--inetd): not a socket")


@case
def stdin_udp_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        err = startup_failure(["-l", "127.0.0.1:0", "--fd-passing", "--", "/bin/cat"],
                              "a datagram socket: --fd-passing workers take connections",
                              stdin=u.fileno())
        assert "fd 0" in err[-1], err


@case
def inetd_stdin_udp_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        startup_failure(["-i", "--fd-passing", "--", "/bin/cat"], "fd 0", "a datagram socket",
                        "--fd-passing workers take connections", stdin=u.fileno())


@case
def fd_passing_with_a_udp_listen_is_a_usage_error():
    msg = usage_error(["-l", "udp:127.0.0.1:0", "--fd-passing", "--", "/bin/cat"],
                      ["--listen"], "udp:127.0.0.1:0")
    assert "--fd-passing workers take connections, not datagrams" in msg, msg


def serves_own_listener(d):
    addr, = d.listening()
    assert addr.startswith("127.0.0.1:") and not addr.endswith(":0"), addr
    assert exchange(addr, b"own\n") == b"own\n"
    assert d.stop() == 0
    bad = [ln for ln in d.lines if "warning" in ln or "error" in ln or "cannot" in ln]
    assert not bad, d.log()


@case
def stdin_devnull_not_a_source():
    serves_own_listener(Daemon(["-l", "127.0.0.1:0"], stdin=subprocess.DEVNULL))


@case
def stdin_pipe_not_a_source():
    r, w = os.pipe()
    with closing_fds(r, w):
        serves_own_listener(Daemon(["-l", "127.0.0.1:0"], stdin=r))


@case
def stdin_tty_not_a_source():
    master, slave = os.openpty()
    with closing_fds(master, slave):
        serves_own_listener(Daemon(["-l", "127.0.0.1:0"], stdin=slave))


@case
def stdin_closed_not_a_source():
    d = Daemon(["-l", "127.0.0.1:0"],
               argv0=["/bin/sh", "-c", 'exec "$@" <&- >&-', "sh", ACCEPTD])
    addr, = d.listening()
    # Both closed fds were reopened on /dev/null before anything else was
    # created: no listener, epoll or signalfd landed on them.
    for fd in (0, 1):
        assert os.readlink("/proc/%d/fd/%d" % (d.pid, fd)) == "/dev/null", fd
    assert exchange(addr, b"own\n") == b"own\n"
    assert d.stop() == 0


@case
def listen_env_garbage_ignored():
    d = Daemon(["-l", "127.0.0.1:0"],
               extra_env={"LISTEN_PID": "notanumber", "LISTEN_FDS": "abc"})
    addr, = d.listening()
    assert re.search(r"warning: .*LISTEN", d.log()), d.log()
    assert exchange(addr, b"own\n") == b"own\n"
    assert d.stop() == 0


@case
def listen_fds_garbage_for_our_pid_ignored():
    # LISTEN_PID really is acceptd's pid (the shell execs it); LISTEN_FDS is junk.
    d = Daemon(["-l", "127.0.0.1:0"],
               argv0=["/bin/sh", "-c", 'export LISTEN_PID=$$ LISTEN_FDS=abc; exec "$@"',
                      "sh", ACCEPTD])
    addr, = d.listening()
    assert re.search(r"warning: .*LISTEN", d.log()), d.log()
    assert exchange(addr, b"own\n") == b"own\n"
    assert d.stop() == 0


@case
def help_exits_0_on_stdout():
    for opt in ("-h", "--help"):
        rc, out, err = run_acceptd([opt])
        assert rc == 0, (opt, rc, err)
        assert out.startswith("Usage: acceptd"), out
        assert "--listen" in out and "--max-conns" in out, out
        assert err == [], err


@case
def version_exits_0():
    for opt in ("-V", "--version"):
        rc, out, err = run_acceptd([opt])
        assert rc == 0, (opt, rc, err)
        assert re.fullmatch(r"acceptd \d+\.\d+(\.\d+)?\S*\nsd-daemon: (libsystemd|built-in)\n",
                            out), out
        assert err == [], err


@case
def sd_daemon_implementation_is_the_configured_one():
    # The libsystemd build must really use libsystemd, and the
    # --without-systemd build the in-tree code: configure could otherwise
    # fall back without a word and one variant would test the other's code.
    want = {"yes": "libsystemd", "no": "built-in"}.get(os.environ.get("ACCEPTD_HAVE_LIBSYSTEMD"))
    if want is None:
        raise Skip("ACCEPTD_HAVE_LIBSYSTEMD not set (run through make check)")
    rc, out, _ = run_acceptd(["--version"])
    assert rc == 0 and out.splitlines()[1] == "sd-daemon: " + want, out
    # What is mapped into a running acceptd, not what it says of itself.
    d = Daemon(["-l", "127.0.0.1:0", "--builtin", "echo"])
    d.listening()
    with open("/proc/%d/maps" % d.pid) as f:
        mapped = "libsystemd.so" in f.read()
    assert mapped == (want == "libsystemd"), (want, mapped)
    assert d.stop() == 0


run()
