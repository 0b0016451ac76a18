"""config.py - --config FILE with the real binary and real files: acceptd
serves what the file says (listen addresses, exec with its words and the
handler's environment, a built-in, verbosity, CRLF files); the command line
replaces the file's values (--listen all of the file's listen lines, -b or
PROGRAM the file's exec or builtin, -v the file's quiet); every bad file is
exit 2 with one stderr line naming FILE:LINE (or --config 'FILE' for the
file itself) and nothing bound; and SIGHUP re-reads the file: a broken file
is logged with FILE:LINE while the old image keeps serving (same pid, same
workers, held and new connections, RELOADING=1 then READY=1), a fixed one
takes effect, and changed listen lines keep, bind and close exactly the
sockets they name (same socket inode for a kept address).

Files are replaced by rename, as an editor or a config manager would, so
acceptd never reads one half written."""
import json
import os
import re
import signal
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from acceptd_test import (refused, sock_inodes, Daemon, Skip, case, connect, exchange, notify_socket,  # noqa: E402
                          notify_until,
                          parse_addr, proc_children, run, run_acceptd, tmpdir,
                          wait_until)

REPORT = [sys.executable, os.path.join(HERE, "helpers", "report.py")]
DAYTIME_RX = rb"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} \S+\r\n"
STILL = "; still serving with the old configuration"


# --- helpers local to this file --------------------------------------------

def q(word):
    """word quoted for an exec = line (single quotes, as in a shell)."""
    return "'" + word.replace("'", "'\\''") + "'"


def write_conf(path, text):
    """Replace the file at path by one holding text, atomically."""
    tmp = path + ".new"
    with open(tmp, "w", newline="") as f:
        f.write(text)
    os.rename(tmp, path)
    return path


def new_conf(text, name="acceptd.conf"):
    return write_conf(os.path.join(tmpdir(), name), text)


def port_of(addr):
    return parse_addr(addr)[1][1]


def report(addr):
    """Connect to a report.py handler; its report as a dict, with env."""
    rep = json.loads(exchange(addr))
    rep["env"] = dict(v.split("=", 1) for v in rep["environ"])
    return rep


def reload_and_wait_ready(d, ns):
    """SIGHUP; the notifications up to the READY=1 that ends the reload,
    of which exactly one is RELOADING=1."""
    d.signal(signal.SIGHUP)
    before = notify_until(ns, b"READY=1")
    rel = [m for m in before if m.startswith(b"RELOADING=1")]
    assert len(rel) == 1, before
    return before


def reloaded(d, start):
    wait_until(lambda: any("reload: done" in ln for ln in d.lines[start:]), 10,
               "reload: done; log:\n" + d.log())


def tcp_listen_inode(ip, port):
    """The inode of the TCP socket listening on ip:port (IPv4), or None."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(ip), sys.byteorder), port)
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return int(fields[9])
    return None


def unix_listen_inode(path):
    """The inode of the unix stream socket listening on path, or None."""
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                return int(fields[6])
    return None


def listen_inode(addr):
    fam, sa = parse_addr(addr)
    return unix_listen_inode(sa) if fam == socket.AF_UNIX else tcp_listen_inode(*sa)


def children(d):
    return sorted(p for p, state in proc_children(d.pid) if state not in ("Z", "X"))


def one_error_line(args, extra_env=None):
    """Run acceptd to its usage error: exit 2, no stdout, one stderr line
    starting "acceptd: "; returns the rest of it."""
    rc, out, err = run_acceptd(args, extra_env=extra_env)
    assert rc == 2, "exit %d, expected 2; stderr %s" % (rc, err)
    assert out == "", "stdout: %r" % out
    assert len(err) == 1, "expected one stderr line, got %s" % err
    assert err[0].startswith("acceptd: "), err
    return err[0][len("acceptd: "):]



# --- 1. serving what the file says ----------------------------------------

@case
def serves_the_files_listens_and_exec_with_its_words():
    d0 = tmpdir()
    sock = os.path.join(d0, "s.sock")
    path = new_conf("# acceptd.conf\n"
                    "listen = 127.0.0.1:0\n"
                    "\n"
                    "  listen = unix:%s\n"
                    "exec = %s %s 'two words' '#1' \"it's\"\n"
                    "verbose = yes\n"
                    % (sock, " ".join(q(w) for w in REPORT[:1]), q(REPORT[1])))
    d = Daemon(["--config", path], extra_env={"ACCEPTD_CONFIG_TEST": "kept"})
    tcp, unix = d.listening(2)
    assert tcp.startswith("127.0.0.1:") and unix == "unix:" + sock, (tcp, unix)
    rep = report(tcp)
    assert rep["argv"] == ["two words", "#1", "it's"], rep["argv"]
    env = rep["env"]
    assert env["PROTO"] == "TCP", env
    assert env["TCPLOCALIP"] == "127.0.0.1" and env["TCPLOCALPORT"] == str(port_of(tcp)), env
    assert env["TCPREMOTEIP"] == "127.0.0.1" and env["REMOTE_ADDR"] == "127.0.0.1", env
    assert env["ACCEPTD_CONFIG_TEST"] == "kept", env
    rep = report(unix)
    assert rep["env"]["PROTO"] == "UNIX" and rep["env"]["UNIXREMOTEEUID"] == str(os.getuid())
    # verbose = yes: every connection is logged
    d.wait_line(r"connection .* on 127\.0\.0\.1:%d" % port_of(tcp))
    d.wait_line(r"connection .* on unix:%s" % re.escape(sock))
    assert d.stop() == 0


@case
def serves_a_builtin_from_a_crlf_file():
    path = new_conf("listen = 127.0.0.1:0\r\n"
                    "\r\n"
                    "# daytime, not echo\r\n"
                    "builtin = daytime\r\n"
                    "workers = 1\r\n"
                    "max-conns = 3\r\n")
    d = Daemon(["--config", path])
    addr, = d.listening()
    d.wait_line(r"started acceptd \S+: daytime$")
    got = exchange(addr)
    assert re.fullmatch(DAYTIME_RX, got), got
    assert len(children(d)) == 1, children(d)      # workers = 1
    assert d.stop() == 0


@case
def quiet_from_the_file():
    ns, nspath = notify_socket()
    with ns:
        path = new_conf("quiet = yes\nlisten = 127.0.0.1:0\nbuiltin = echo\n")
        d = Daemon(["--config", path], extra_env={"NOTIFY_SOCKET": nspath})
        notify_until(ns)
        # Nothing logged, so the port comes from the socket acceptd holds.
        inodes = sock_inodes(d.pid)
        with open("/proc/net/tcp") as f:
            ports = [int(ln.split()[1].split(":")[1], 16) for ln in f.readlines()[1:]
                     if ln.split()[3] == "0A" and int(ln.split()[9]) in inodes]
        assert len(ports) == 1, ports
        assert exchange("127.0.0.1:%d" % ports[0], b"hush") == b"hush"
        assert d.stop() == 0
        assert d.lines == [], d.lines


@case
def command_line_verbose_replaces_the_files_quiet():
    path = new_conf("quiet = yes\nlisten = 127.0.0.1:0\nbuiltin = echo\n")
    d = Daemon(["--config", path, "-v"])
    addr, = d.listening()
    assert exchange(addr, b"loud") == b"loud"
    d.wait_line(r"connection .* on 127\.0\.0\.1:%d" % port_of(addr))
    assert d.stop() == 0


# --- 2. the command line replaces the file's values -------------------------

@case
def command_line_listen_replaces_all_of_the_files():
    d0 = tmpdir()
    a, b = os.path.join(d0, "a.sock"), os.path.join(d0, "b.sock")
    path = new_conf("listen = unix:%s\nlisten = 127.0.0.1:0\nbuiltin = echo\n" % a)
    d = Daemon(["--config", path, "-l", "unix:" + b])
    assert d.listening() == ["unix:" + b]
    assert exchange("unix:" + b, b"cmd") == b"cmd"
    assert len([ln for ln in d.lines if "listening on" in ln]) == 1, d.log()
    assert not os.path.exists(a)
    assert d.stop() == 0


@case
def command_line_builtin_replaces_the_files_exec():
    # The file's PROGRAM does not even exist: it is dropped, not checked.
    path = new_conf("listen = 127.0.0.1:0\nexec = /nonexistent/handler 'x'\n")
    d = Daemon(["--config", path, "-b", "echo"])
    addr, = d.listening()
    d.wait_line(r"started acceptd \S+: echo$")
    assert exchange(addr, b"builtin") == b"builtin"
    assert d.stop() == 0


@case
def command_line_program_replaces_the_files_builtin():
    path = new_conf("listen = 127.0.0.1:0\nbuiltin = daytime\n")
    d = Daemon(["--config", path, "--", "/bin/echo", "from the command line"])
    addr, = d.listening()
    assert exchange(addr) == b"from the command line\n"
    assert d.stop() == 0


# --- 3. bad files: exit 2, one line, FILE:LINE, nothing bound ---------------

# name, the file (SOCK: a unix socket that must not come to exist), the
# line, the reason after "FILE:LINE: "
BAD = [
    ("missing_equals", "listen = unix:SOCK\nmax-conns 5\n", 2,
     "missing '=' (expected KEY = VALUE)"),
    ("bad_key_character", "listen = unix:SOCK\nmax_conns = 5\n", 2,
     "bad character in key (keys are a-z, 0-9 and '-')"),
    ("empty_value", "listen = unix:SOCK\n\nmax-conns =\n", 3, "empty value for 'max-conns'"),
    ("unknown_key", "listen = unix:SOCK\n# comment\n\nnosuch = 1\n", 4,
     "unknown key 'nosuch' (keys are the long options and exec; see acceptd.conf(5))"),
    ("not_settable", "listen = unix:SOCK\nconfig = /etc/acceptd.conf\n", 2,
     "'config' cannot be set in a config file"),
    ("bad_number", "listen = unix:SOCK\nmax-conns = 0\n", 2,
     "max-conns '0': out of range (1-1000000)"),
    ("trailing_comment_is_value", "listen = unix:SOCK\nbacklog = 5 # five\n", 2,
     "backlog '5 # five': not a number"),
    ("bad_flag", "listen = unix:SOCK\nnodelay = maybe\n", 2, "nodelay 'maybe': want yes or no"),
    ("bad_listen", "listen = unix:SOCK\nlisten = 1.2.3:80\n", 2,
     "listen '1.2.3:80': not a valid IPv4 address"),
    ("bad_builtin", "listen = unix:SOCK\nbuiltin = nosuch\n", 2,
     "builtin 'nosuch': unknown (echo, discard, chargen, daytime, time)"),
    ("duplicate", "max-conns = 1\nlisten = unix:SOCK\nmax-conns = 2\n", 3,
     "max-conns: given twice (first on line 1)"),
    ("exec_twice", "exec = /bin/cat\nlisten = unix:SOCK\nexec = /bin/cat\n", 3,
     "exec: given twice (first on line 1)"),
    ("exec_and_builtin", "listen = unix:SOCK\nexec = /bin/cat\nbuiltin = echo\n", 2,
     "exec and builtin (line 3) exclude each other"),
    ("exec_unterminated", "listen = unix:SOCK\nexec = /bin/sh -c 'echo\n", 2,
     "exec: unterminated ' quote"),
    ("crlf_line_numbers", "listen = unix:SOCK\r\n\r\n# x\r\ntimeout = 1s\r\n", 4,
     "timeout '1s': not a number"),
]


def _bad_case(name, text, line, reason):
    def fn():
        d0 = tmpdir()
        sock = os.path.join(d0, "never.sock")
        path = write_conf(os.path.join(d0, "bad.conf"), text.replace("SOCK", sock))
        msg = one_error_line(["--config", path])
        assert msg == "%s:%d: %s" % (path, line, reason), msg
        assert not os.path.exists(sock), "a socket was bound before the error"
    fn.__name__ = "bad_file_" + name
    case(fn)


for _b in BAD:
    _bad_case(*_b)


@case
def bad_file_itself():
    d0 = tmpdir()
    missing = os.path.join(d0, "missing.conf")
    assert one_error_line(["--config", missing]) == \
        "--config '%s': No such file or directory" % missing
    assert one_error_line(["--config", d0]) == "--config '%s': not a regular file" % d0
    nul = os.path.join(d0, "nul.conf")
    with open(nul, "wb") as f:
        f.write(b"listen = 127.0.0.1:0\n\0\n")
    assert one_error_line(["--config", nul]) == \
        "--config '%s': contains a NUL byte (not a text file?)" % nul
    big = os.path.join(d0, "big.conf")
    with open(big, "wb") as f:
        f.write(b"#" * (1 << 20) + b"\n")
    assert one_error_line(["--config", big]) == \
        "--config '%s': larger than 1048576 bytes" % big
    assert one_error_line(["--config", big, "--config", nul]) == \
        "--config: given twice ('%s', '%s')" % (big, nul)


@case
def bad_file_wins_over_command_line():
    """The file's line is reported even when the command line replaces
    that option: the file is still wrong."""
    path = new_conf("max-conns = 1\nmax-conns = 2\n")
    assert one_error_line(["--config", path, "-c", "3"]) == \
        "%s:2: max-conns: given twice (first on line 1)" % path
    path = new_conf("bogus = 1\n")
    assert one_error_line(["--config", path, "-b", "echo", "-l", "127.0.0.1:0"]) == \
        "%s:1: unknown key 'bogus' (keys are the long options and exec; see " \
        "acceptd.conf(5))" % path


@case
def exec_program_not_found():
    path = new_conf("listen = 127.0.0.1:0\nexec = /nonexistent/handler\n")
    assert one_error_line(["--config", path]) == \
        "PROGRAM '/nonexistent/handler': not found or not executable"


# --- 4. SIGHUP re-reads the file --------------------------------------------

GOOD = "listen = 127.0.0.1:0\nbuiltin = echo\nworkers = 1\n"


def broken_files(tmp, path):
    """(what, how to break the file, the reload error expected)."""
    missing = os.path.join(tmp, "missing-handler")
    return [
        ("syntax error", lambda: write_conf(path, GOOD + "max-conns 5\n"),
         "%s:4: missing '=' (expected KEY = VALUE)" % path),
        ("unknown key", lambda: write_conf(path, "listen = 127.0.0.1:0\nbogus = 1\n" + GOOD[21:]),
         "%s:2: unknown key 'bogus' (keys are the long options and exec; see "
         "acceptd.conf(5))" % path),
        ("bad value", lambda: write_conf(path, GOOD.replace("workers = 1", "workers = 0")),
         "%s:3: workers '0': out of range (1-4096)" % path),
        ("PROGRAM that does not exist",
         lambda: write_conf(path, "listen = 127.0.0.1:0\nexec = %s\n" % missing),
         "PROGRAM '%s': not found or not executable" % missing),
        ("file removed", lambda: os.unlink(path),
         "--config '%s': No such file or directory" % path),
    ]


@case
def reload_with_a_broken_file_keeps_serving():
    tmp = tmpdir()
    path = write_conf(os.path.join(tmp, "acceptd.conf"), GOOD)
    ns, nspath = notify_socket()
    with ns:
        d = Daemon(["-v", "--config", path], extra_env={"NOTIFY_SOCKET": nspath})
        addr, = d.listening()
        notify_until(ns)
        workers = children(d)
        assert len(workers) == 1, workers
        held = connect(addr)
        held.sendall(b"a")
        assert held.recv(1) == b"a"
        for what, breakit, why in broken_files(tmp, path):
            breakit()
            mark = len(d.lines)
            reload_and_wait_ready(d, ns)
            m = d.wait_line(r"reload: (.*)%s$" % re.escape(STILL), start=mark)
            assert m.group(1) == why, "%s: %r" % (what, m.group(1))
            since = "\n".join(d.lines[mark:])
            assert "reload: executing" not in since, since
            # The old image: the same process, the same worker, serving
            # the connection it holds and new ones.
            assert d.proc.poll() is None
            assert children(d) == workers, (what, children(d), workers)
            assert exchange(addr, b"new") == b"new", what
            held.sendall(b"b")
            assert held.recv(1) == b"b", what
        # Fixed, and changed: the next SIGHUP takes it.
        write_conf(path, GOOD.replace("echo", "daytime"))
        mark = len(d.lines)
        reload_and_wait_ready(d, ns)
        reloaded(d, mark)
        assert d.proc.poll() is None
        d.wait_line(r"listening on %s \(kept across the reload\)$" % re.escape(addr),
                    start=mark)
        d.wait_line(r"started acceptd \S+: daytime$", start=mark)
        assert re.fullmatch(DAYTIME_RX, exchange(addr)), "not daytime after the reload"
        # the old worker still serves what it held
        held.sendall(b"c")
        assert held.recv(1) == b"c"
        held.close()
        wait_until(lambda: workers[0] not in children(d), 10, "the old worker to exit")
        assert d.stop() == 0


@case
def reload_with_a_broken_file_and_no_notify_socket():
    """Without NOTIFY_SOCKET the same: logged, still serving."""
    path = new_conf(GOOD)
    d = Daemon(["--config", path])
    addr, = d.listening()
    write_conf(path, GOOD + "\n\nworkers = 2\n")
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: %s:6: workers: given twice \(first on line 3\)%s$"
                % (re.escape(path), re.escape(STILL)), start=mark)
    assert exchange(addr, b"still") == b"still"
    assert d.stop() == 0


@case
def reload_changes_listen_addresses():
    tmp = tmpdir()
    a, b, c = (os.path.join(tmp, n + ".sock") for n in "abc")
    path = write_conf(os.path.join(tmp, "acceptd.conf"),
                      "listen = 127.0.0.1:0\nlisten = 127.0.0.2:0\n"
                      "listen = unix:%s\nlisten = unix:%s\nbuiltin = echo\nworkers = 1\n"
                      % (a, b))
    d = Daemon(["--config", path])
    kept_tcp, dropped_tcp, kept_unix, dropped_unix = d.listening(4)
    assert kept_tcp.startswith("127.0.0.1:") and dropped_tcp.startswith("127.0.0.2:")
    assert (kept_unix, dropped_unix) == ("unix:" + a, "unix:" + b)
    before = {x: listen_inode(x) for x in (kept_tcp, dropped_tcp, kept_unix, dropped_unix)}
    assert None not in before.values(), before
    assert set(before.values()) <= sock_inodes(d.pid), (before, sock_inodes(d.pid))
    held = connect(kept_tcp)
    held.sendall(b"h")
    assert held.recv(1) == b"h"

    write_conf(path, "listen = 127.0.0.1:0\nlisten = 127.0.0.3:0\n"
               "listen = unix:%s\nlisten = unix:%s\nbuiltin = echo\nworkers = 1\n" % (a, c))
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    reloaded(d, mark)
    d.wait_line(r"listening on %s \(kept across the reload\)$" % re.escape(kept_tcp),
                start=mark)
    d.wait_line(r"listening on %s \(kept across the reload\)$" % re.escape(kept_unix),
                start=mark)
    added_tcp = d.wait_line(r"listening on (127\.0\.0\.3:\d+)$", start=mark).group(1)
    d.wait_line(r"listening on unix:%s$" % re.escape(c), start=mark)
    d.wait_line(r"127\.0\.0\.2_%d is no longer asked for" % port_of(dropped_tcp), start=mark)
    d.wait_line(r"%s is no longer asked for" % re.escape(b.replace(":", "_")), start=mark)
    # Kept: the very same sockets.
    now = sock_inodes(d.pid)
    for x in (kept_tcp, kept_unix):
        assert listen_inode(x) == before[x], (x, listen_inode(x), before[x])
        assert before[x] in now, (x, before[x], now)
    # Dropped: closed.
    for x in (dropped_tcp, dropped_unix):
        assert before[x] not in now, (x, before[x], now)
        assert listen_inode(x) is None, x
        assert refused(x), x
    # Added: bound, and serving.
    for x in (added_tcp, "unix:" + c):
        assert listen_inode(x) in now, x
    for x in (kept_tcp, kept_unix, added_tcp, "unix:" + c):
        assert exchange(x, b"to " + x.encode()) == b"to " + x.encode(), x
    held.sendall(b"i")
    assert held.recv(1) == b"i"
    held.close()
    assert d.stop() == 0


@case
def reload_keeps_command_line_replacements():
    """The command line still replaces the re-read file: its -l and -b
    stand, and the file's values for them are not even checked."""
    tmp = tmpdir()
    sock = os.path.join(tmp, "cmd.sock")
    path = write_conf(os.path.join(tmp, "acceptd.conf"),
                      "listen = 127.0.0.1:0\nexec = /bin/cat\nmax-conns = 5\n")
    d = Daemon(["--config", path, "-l", "unix:" + sock, "-b", "echo", "-w", "1"])
    assert d.listening() == ["unix:" + sock]
    write_conf(path, "listen = 127.0.0.2:0\nexec = /nonexistent/handler\nmax-conns = 6\n")
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    reloaded(d, mark)
    listening = [ln for ln in d.lines[mark:] if "listening on" in ln]
    assert listening == ["acceptd: listening on unix:%s (kept across the reload)" % sock], \
        listening
    d.wait_line(r"started acceptd \S+: echo$", start=mark)
    assert exchange("unix:" + sock, b"cmd") == b"cmd"
    assert d.stop() == 0


# --- 5. what a reload checks before it executes --------------------------------

@case
def reload_with_an_unknown_user_keeps_serving():
    path = new_conf(GOOD)
    d = Daemon(["--config", path])
    addr, = d.listening()
    write_conf(path, GOOD + "user = no-such-user-acceptd\n")
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: --user 'no-such-user-acceptd': no such user%s$" % re.escape(STILL),
                start=mark)
    assert exchange(addr, b"x") == b"x"
    assert d.stop() == 0


@case
def reload_with_an_unbindable_listen_keeps_serving():
    path = new_conf(GOOD)
    d = Daemon(["--config", path])
    addr, = d.listening()
    write_conf(path, GOOD + "listen = 192.0.2.1:1\n")    # TEST-NET-1: not ours
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: .*192\.0\.2\.1:1.*%s$" % re.escape(STILL), start=mark)
    assert exchange(addr, b"x") == b"x"
    assert d.stop() == 0


@case
def config_fifo_does_not_hang():
    fifo = os.path.join(tmpdir(), "fifo.conf")
    os.mkfifo(fifo)
    assert one_error_line(["--config", fifo]) == "--config '%s': not a regular file" % fifo
    path = new_conf(GOOD)
    d = Daemon(["--config", path])
    addr, = d.listening()
    os.rename(fifo, path)
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: --config '%s': not a regular file%s$"
                % (re.escape(path), re.escape(STILL)), start=mark)
    assert exchange(addr, b"x") == b"x"
    assert d.stop() == 0


run()
