"""handler_env.py - what a PROGRAM handler gets: the UCSPI/CGI environment,
nothing of acceptd's plumbing, fds 0-2 only, clean signal state, acceptd's
umask, a process group of its own, PATH lookup, its arguments, and its exit
status in the -v log."""
import json
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (private_netns, notify_until, Daemon, Skip, case, connect, exchange, has_ipv6,  # noqa: E402
                          closing_fds, parse_addr, read_all, run, tmpdir, write_script)

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
REPORT = [sys.executable, os.path.join(HELPERS, "report.py")]
# A handler that is the process acceptd started, with no interpreter in
# between that could change its signal state: it prints its own status.
STATUS = ["/bin/cat", "/proc/self/status"]
PLUMBING = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
            "WATCHDOG_USEC", "WATCHDOG_PID")


def port_of(addr):
    return parse_addr(addr)[1][1]


def read_line(sock):
    buf = b""
    while not buf.endswith(b"\n"):
        b = sock.recv(65536)
        if not b:
            raise AssertionError("connection closed before a full line: %r" % buf)
        buf += b
    return buf


def ask(addr, family=None):
    """Connect, read the report line; returns (open socket, report, env)."""
    c = connect(addr, family)
    rep = json.loads(read_line(c))
    names = [v.split("=", 1)[0] for v in rep["environ"]]
    dups = sorted({n for n in names if names.count(n) > 1})
    assert not dups, "variables set twice in the handler: %s" % dups
    env = dict(v.split("=", 1) for v in rep["environ"])
    return c, rep, env


def status_fields(addr):
    """Run the /bin/cat /proc/self/status handler, return its fields."""
    text = exchange(addr).decode()
    return dict(ln.split(":\t", 1) for ln in text.splitlines() if ":\t" in ln)


def sigmask(fields, name):
    return int(fields[name], 16)


def check_signal_state(f):
    """The handler's mask is empty and it ignores no signal at all, glibc's
    reserved 32 and 33 included (posix_spawn used to leave those ignored)."""
    assert sigmask(f, "SigBlk") == 0, "handler SigBlk " + f["SigBlk"]
    ign = sigmask(f, "SigIgn")
    assert ign == 0, "handler ignores signals %s (SigIgn %s)" % (
        [n + 1 for n in range(64) if ign >> n & 1], f["SigIgn"].strip())


@case
def tcp_env_ipv4():
    d = Daemon(["-l", "127.0.0.1:0", "--"] + REPORT)
    addr, = d.listening()
    port = port_of(addr)
    c, _rep, env = ask(addr)
    me = c.getsockname()
    c.close()
    want = {
        "PROTO": "TCP",
        "TCPLOCALIP": "127.0.0.1", "TCPLOCALPORT": str(port),
        "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": str(me[1]),
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": str(me[1]),
        "TCPCONNNUM": "1",
        "ACCEPTD_LISTENER": "127.0.0.1:%d" % port,
    }
    got = {k: env.get(k) for k in want}
    assert got == want, (got, want)
    for k in ("UNIXREMOTEEUID", "UNIXREMOTEEGID", "UNIXREMOTEPID", "UNIXLOCALPATH"):
        assert k not in env, k
    assert d.stop() == 0


@case
def tcp_env_ipv6():
    if not has_ipv6():
        raise Skip("no IPv6 on loopback")
    d = Daemon(["-l", "[::1]:0", "--"] + REPORT)
    addr, = d.listening()
    port = port_of(addr)
    c, _rep, env = ask(addr)
    me = c.getsockname()
    c.close()
    want = {
        "PROTO": "TCP",
        "TCPLOCALIP": "::1", "TCPLOCALPORT": str(port),
        "TCPREMOTEIP": "::1", "TCPREMOTEPORT": str(me[1]),
        "REMOTE_ADDR": "::1", "REMOTE_PORT": str(me[1]),
        "TCPCONNNUM": "1",
        "ACCEPTD_LISTENER": "[::1]:%d" % port,
    }
    got = {k: env.get(k) for k in want}
    assert got == want, (got, want)
    assert d.stop() == 0


@case
def dual_stack_shows_plain_ipv4():
    if not has_ipv6():
        raise Skip("no IPv6 on loopback")
    private_netns()      # binds all interfaces: only in a namespace of our own
    d = Daemon(["-l", "0", "--"] + REPORT)
    addr, = d.listening()
    port = port_of(addr)
    c, _rep, env = ask(addr, socket.AF_INET)
    me = c.getsockname()
    c.close()
    got = {k: env.get(k) for k in ("TCPREMOTEIP", "REMOTE_ADDR", "TCPLOCALIP",
                                   "TCPREMOTEPORT", "TCPLOCALPORT", "ACCEPTD_LISTENER")}
    assert got == {"TCPREMOTEIP": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1",
                   "TCPLOCALIP": "127.0.0.1", "TCPREMOTEPORT": str(me[1]),
                   "TCPLOCALPORT": str(port), "ACCEPTD_LISTENER": "[::]:%d" % port}, got
    c, _rep, env = ask(addr, socket.AF_INET6)
    c.close()
    assert (env.get("TCPREMOTEIP"), env.get("TCPLOCALIP")) == ("::1", "::1"), (
        env.get("TCPREMOTEIP"), env.get("TCPLOCALIP"))
    assert d.stop() == 0


@case
def connnum_counts_open_connections_per_source():
    dual = has_ipv6()
    if dual:
        private_netns()  # binds all interfaces: only in a namespace of our own
    d = Daemon(["-v", "-l", "0" if dual else "127.0.0.1:0", "--"] + REPORT + ["--hold"])
    addr, = d.listening()
    c1, _r, env1 = ask(addr, socket.AF_INET)
    c2, _r, env2 = ask(addr, socket.AF_INET)   # c1's handler still runs
    assert (env1["TCPCONNNUM"], env2["TCPCONNNUM"]) == ("1", "2"), (
        env1["TCPCONNNUM"], env2["TCPCONNNUM"])
    if dual:
        c6, _r, env6 = ask(addr, socket.AF_INET6)   # another source
        assert env6["TCPCONNNUM"] == "1", env6["TCPCONNNUM"]
        c6.close()
    ports = [c1.getsockname()[1], c2.getsockname()[1]]
    c1.close()
    c2.close()
    for p in ports:
        d.wait_line(r"end 127\.0\.0\.1:%d pid \d+ status 0" % p)
    c3, _r, env3 = ask(addr, socket.AF_INET)   # the count went back down
    c3.close()
    assert env3["TCPCONNNUM"] == "1", env3["TCPCONNNUM"]
    assert d.stop() == 0


@case
def unix_env():
    path = os.path.join(tmpdir(), "env.sock")
    d = Daemon(["-l", "unix:" + path, "--"] + REPORT)
    addr, = d.listening()
    c, _rep, env = ask(addr)
    c.close()
    # UCSPI-UNIX's names (ucspi-unix, nosh), not acceptd 0.1's own.
    want = {"PROTO": "UNIX", "UNIXREMOTEEUID": str(os.geteuid()),
            "UNIXREMOTEEGID": str(os.getegid()), "UNIXREMOTEPID": str(os.getpid()),
            "UNIXLOCALPATH": path, "ACCEPTD_LISTENER": "unix:" + path}
    got = {k: env.get(k) for k in want}
    assert got == want, (got, want)
    assert "UNIXREMOTEUID" not in env and "UNIXREMOTEGID" not in env, env
    for k in ("TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT"):
        assert k not in env, (k, env[k])
    assert d.stop() == 0


@case
def plumbing_and_stale_values_not_inherited():
    t = tmpdir()
    notify_path = os.path.join(t, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    stale = {"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "30000000",
             "WATCHDOG_PID": "1", "LISTEN_PID": "1", "LISTEN_FDS": "2",
             "LISTEN_FDNAMES": "a:b", "TCPREMOTEIP": "bogus", "TCPREMOTEPORT": "1",
             "REMOTE_ADDR": "bogus", "TCPCONNNUM": "99", "PROTO": "bogus",
             "ACCEPTD_LISTENER": "bogus", "UNIXREMOTEPID": "1", "UNIXLOCALPATH": "/bogus",
             "UNIXREMOTEEUID": "1", "UNIXREMOTEUID": "1",
             "ACCEPTD_TEST_KEEP": "kept"}
    with notify:
        d = Daemon(["-l", "127.0.0.1:0", "--"] + REPORT, extra_env=stale)
        addr, = d.listening()
        # NOTIFY_SOCKET really was acceptd's: it reported readiness there.
        notify_until(notify)
        c, _rep, env = ask(addr)
        me = c.getsockname()
        c.close()
    leaked = {k: env[k] for k in PLUMBING if k in env}
    assert not leaked, "plumbing reached the handler: %s" % leaked
    assert env.get("TCPREMOTEIP") == "127.0.0.1", env.get("TCPREMOTEIP")
    assert env.get("REMOTE_ADDR") == "127.0.0.1", env.get("REMOTE_ADDR")
    assert env.get("TCPREMOTEPORT") == str(me[1])
    assert (env.get("TCPCONNNUM"), env.get("PROTO")) == ("1", "TCP"), (
        env.get("TCPCONNNUM"), env.get("PROTO"))
    assert env.get("ACCEPTD_LISTENER") == addr, env.get("ACCEPTD_LISTENER")
    for k in ("UNIXREMOTEPID", "UNIXLOCALPATH", "UNIXREMOTEEUID", "UNIXREMOTEUID"):
        assert k not in env, (k, env[k])
    # The rest of acceptd's environment does pass through.
    assert env.get("ACCEPTD_TEST_KEEP") == "kept"
    assert env.get("PATH") == os.environ.get("PATH")
    assert d.stop() == 0


@case
def fds_only_connection_and_stderr():
    d = Daemon(["-l", "127.0.0.1:0", "--"] + REPORT)
    addr, = d.listening()
    c, rep, _env = ask(addr)
    me, peer = c.getsockname(), c.getpeername()
    c.close()
    assert rep["fds"] == [0, 1, 2], rep["fds"]
    fd0, fd1, fd2 = rep["fd"]["0"], rep["fd"]["1"], rep["fd"]["2"]
    assert fd0["sock"] and fd1["sock"], rep["fd"]
    assert (fd0["dev"], fd0["ino"]) == (fd1["dev"], fd1["ino"]), "fd 0 and 1 differ"
    # It is this very connection.
    assert tuple(rep["conn"]["peer"]) == me and tuple(rep["conn"]["sock"]) == peer, rep["conn"]
    # fd 2 is acceptd's stderr (the pipe the test reads the log from).
    theirs = os.readlink("/proc/%d/fd/2" % d.pid)
    assert theirs.startswith("pipe:"), theirs
    assert fd2["fifo"] and fd2["link"] == theirs, (fd2, theirs)
    assert d.stop() == 0


@case
def inherited_fd_not_passed_on():
    r, w = os.pipe()
    with closing_fds(r, w):
        os.set_inheritable(w, True)
        d = Daemon(["-l", "127.0.0.1:0", "--"] + REPORT, pass_fds=(w,))
        addr, = d.listening()
        # acceptd itself holds the inherited fd (the precondition).
        assert os.readlink("/proc/%d/fd/%d" % (d.pid, w)).startswith("pipe:")
        c, rep, _env = ask(addr)
        c.close()
        assert rep["fds"] == [0, 1, 2], "handler has fds %s (inherited fd was %d)" % (
            rep["fds"], w)
        assert d.stop() == 0


@case
def signal_state_clean():
    d = Daemon(["-l", "127.0.0.1:0", "--"] + STATUS)
    addr, = d.listening()
    f = status_fields(addr)
    assert d.stop() == 0
    check_signal_state(f)


def _ignore_and_block():
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGQUIT, signal.SIGALRM})


@case
def signal_state_clean_despite_inherited():
    d = Daemon(["-l", "127.0.0.1:0", "--"] + STATUS, preexec_fn=_ignore_and_block)
    addr, = d.listening()
    with open("/proc/%d/status" % d.pid) as fh:
        mine = dict(ln.split(":\t", 1) for ln in fh.read().splitlines() if ":\t" in ln)
    # The precondition: acceptd did start with SIGHUP ignored, SIGQUIT blocked.
    assert sigmask(mine, "SigIgn") & (1 << (signal.SIGHUP - 1)), mine["SigIgn"]
    assert sigmask(mine, "SigBlk") & (1 << (signal.SIGQUIT - 1)), mine["SigBlk"]
    f = status_fields(addr)
    # SIGTERM was blocked at start, and acceptd still stops on it.
    assert d.stop() == 0
    check_signal_state(f)


@case
def umask_from_acceptd():
    d = Daemon(["-l", "127.0.0.1:0", "--"] + STATUS, preexec_fn=lambda: os.umask(0o027))
    addr, = d.listening()
    f = status_fields(addr)
    assert f["Umask"].strip() == "0027", f["Umask"]
    assert d.stop() == 0


@case
def own_process_group():
    d = Daemon(["-l", "127.0.0.1:0", "--"] + REPORT)
    addr, = d.listening()
    c, rep, _env = ask(addr)
    c.close()
    ids = {k: rep[k] for k in ("pid", "pgid", "ppid")}
    assert rep["pgid"] == rep["pid"], ids
    assert rep["pgid"] != os.getpgid(d.pid), (ids, os.getpgid(d.pid))
    assert rep["ppid"] == d.pid, (ids, d.pid)
    assert d.stop() == 0


@case
def program_found_in_path():
    t = tmpdir()
    first, second = os.path.join(t, "first"), os.path.join(t, "second")
    os.mkdir(first)
    os.mkdir(second)
    name = "acceptd-test-path-handler"
    want = write_script(first, name, '#!/bin/sh\necho "found $0 $*"\n')
    write_script(second, name, '#!/bin/sh\necho wrong\n')
    path = "%s:%s:%s" % (first, second, os.environ.get("PATH", "/usr/bin:/bin"))
    d = Daemon(["-l", "127.0.0.1:0", name, "a", "b c"], extra_env={"PATH": path})
    addr, = d.listening()
    assert exchange(addr) == ("found %s a b c\n" % want).encode()
    assert d.stop() == 0


@case
def program_arguments_passed_through():
    d = Daemon(["-l", "127.0.0.1:0", "--"] + REPORT + ["-x", "y", "--", "two words"])
    addr, = d.listening()
    c, rep, _env = ask(addr)
    c.close()
    assert rep["argv"] == ["-x", "y", "--", "two words"], rep["argv"]
    assert d.stop() == 0


@case
def program_options_not_acceptd_options():
    # Without "--", options after PROGRAM are still PROGRAM's: no -v here.
    d = Daemon(["-l", "127.0.0.1:0"] + REPORT + ["-v", "-c", "1"])
    addr, = d.listening()
    c, rep, _env = ask(addr)
    c.close()
    assert rep["argv"] == ["-v", "-c", "1"], rep["argv"]
    assert d.stop() == 0
    assert "connection " not in d.log(), d.log()


@case
def exit_status_in_verbose_log():
    d = Daemon(["-v", "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", "exit 3"])
    addr, = d.listening()
    with connect(addr) as c:
        me = c.getsockname()[1]
        assert read_all(c) == b""
    d.wait_line(r"end 127\.0\.0\.1:%d pid \d+ status 3 after" % me)
    assert d.stop() == 0


@case
def killed_handler_in_verbose_log():
    d = Daemon(["-v", "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", "kill -KILL $$"])
    addr, = d.listening()
    with connect(addr) as c:
        me = c.getsockname()[1]
        assert read_all(c) == b""
    d.wait_line(r"end 127\.0\.0\.1:%d pid \d+ killed by signal 9 after" % me)
    assert d.stop() == 0


run()
