"""reload.py - SIGHUP re-executes acceptd in place: the same pid, the same
listening sockets (nothing refused or reset meanwhile), running handlers
still reaped and still counted against -c, pool workers replaced (old ones
finish what they hold), RELOADING=1 then READY=1 on NOTIFY_SOCKET, and a
reload that cannot happen (PROGRAM gone, binary gone) leaves the old image
serving.  The load test runs connbench from ../shared/bench when that
exists next to the checkout, else a Python load of its own."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import (connbench_binary, fd_targets, ACCEPTD, Daemon, Skip, case, connect, counters,  # noqa: E402
                          exchange, has_ipv6, notify_until, parse_addr, proc_children, run,
                          tmpdir, wait_counters, wait_until)

HOLD = ["/bin/sh", "-c", "printf x; exec cat"]
LISTEN_EXEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers",
                           "src_listen_exec.py")
SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def port_of(addr):
    return parse_addr(addr)[1][1]


def reloaded(d, n=1, start=0, timeout=10):
    """Wait until the n-th 'reload: done' line after index start."""
    def count():
        return sum(1 for ln in d.lines[start:] if "reload: done" in ln) >= n
    wait_until(count, timeout, "%d reload(s) done; log:\n%s" % (n, d.log()))


@case
def same_pid_same_socket_handlers_still_counted():
    d = Daemon(["-v", "-c", "1", "-l", "127.0.0.1:0", "--"] + HOLD)
    addr, = d.listening()
    held = connect(addr)
    assert held.recv(1) == b"x"
    handler, = [p for p, _ in proc_children(d.pid)]
    d.signal(signal.SIGHUP)
    reloaded(d)
    assert d.proc.poll() is None
    assert re.search(r"listening on 127\.0\.0\.1:%d \(kept across the reload\)"
                     % port_of(addr), d.log()), d.log()
    # The handler from before still counts against -c 1: a new client
    # waits in the backlog, it is not served and not refused.
    waiting = connect(addr)
    waiting.settimeout(0.5)
    try:
        got = waiting.recv(1)
    except socket.timeout:
        got = None
    assert got is None, "served beyond -c 1 after the reload"
    assert counters(d)["active"] == 1
    # It ends: the new image reaps it (no zombie) and serves the waiter.
    held.sendall(b"bye")
    assert held.recv(3) == b"bye"
    held.close()
    waiting.settimeout(10)
    assert waiting.recv(1) == b"x"
    wait_until(lambda: handler not in [p for p, _ in proc_children(d.pid)], 10,
               "the old handler reaped")
    waiting.close()
    wait_counters(d, active=0, total=2)
    assert d.stop() == 0


@case
def pool_workers_replaced_old_ones_finish():
    d = Daemon(["-v", "-b", "echo", "-w", "2", "-l", "127.0.0.1:0"])
    addr, = d.listening()
    old = set(int(m) for m in re.findall(r"worker \d+ pid (\d+) ready",
                                         "\n".join(d.lines) + "\n" +
                                         d.wait_line(r"worker 1 pid \d+ ready").string))
    c = connect(addr)
    c.sendall(b"before")
    assert c.recv(6) == b"before"
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    reloaded(d, start=mark)
    d.wait_line(r"worker 1 pid \d+ ready", start=mark)
    # New connections go to new workers...
    assert exchange(addr, b"after") == b"after"
    # ...the old worker still serves the connection it holds...
    c.sendall(b"still")
    assert c.recv(5) == b"still"
    # (the "after" connection's end is reported asynchronously)
    wait_counters(d, active=1, total=2)
    c.close()
    # ...and exits once it is done: only the new workers remain.
    wait_until(lambda: not old & set(p for p, _ in proc_children(d.pid)), 10,
               "old workers %s to exit" % old)
    wait_counters(d, active=0, total=2)
    assert len(proc_children(d.pid)) == 2, proc_children(d.pid)
    assert d.stop() == 0


@case
def notify_reloading_then_ready():
    tmp = tmpdir()
    path = os.path.join(tmp, "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    with ns:
        d = Daemon(["-l", "127.0.0.1:0", "-b", "echo", "-w", "1"],
                   extra_env={"NOTIFY_SOCKET": path})
        d.listening()
        notify_until(ns)
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        d.signal(signal.SIGHUP)
        before = notify_until(ns, b"READY=1")
        t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
        rel = [m for m in before if m.startswith(b"RELOADING=1")]
        assert len(rel) == 1, before
        usec = int(re.search(rb"MONOTONIC_USEC=(\d+)", rel[0]).group(1))
        assert t0 * 1e6 - 1000 <= usec <= t1 * 1e6 + 1000, (t0, usec, t1)
        assert d.stop() == 0


@case
def program_gone_keeps_the_old_image_serving():
    tmp = tmpdir()
    prog = os.path.join(tmp, "handler")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\necho hello\n")
    os.chmod(prog, 0o755)
    d = Daemon(["-l", "127.0.0.1:0", "--", prog])
    addr, = d.listening()
    os.unlink(prog)
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: PROGRAM '.*handler': not found or not executable; "
                r"still serving with the old configuration", start=mark)
    # Still the old image, still accepting (the handler itself is gone,
    # so it fails to start - but the listener is served and not closed).
    assert "reload: executing" not in "\n".join(d.lines[mark:])
    with open(prog, "w") as f:
        f.write("#!/bin/sh\necho back\n")
    os.chmod(prog, 0o755)
    assert exchange(addr) == b"back\n"
    assert d.stop() == 0


@case
def binary_gone_keeps_serving_binary_upgrade_is_picked_up():
    tmp = tmpdir()
    exe = os.path.join(tmp, "acceptd")
    shutil.copy2(ACCEPTD, exe)
    d = Daemon(["-l", "127.0.0.1:0", "-b", "echo", "-w", "1"], argv0=[exe])
    addr, = d.listening()
    os.unlink(exe)
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: cannot execute .*acceptd: No such file or directory; "
                r"still serving", start=mark)
    assert exchange(addr, b"x") == b"x"
    # The binary comes back (an upgrade): the next SIGHUP runs it.
    shutil.copy2(ACCEPTD, exe + ".new")
    os.rename(exe + ".new", exe)
    ino = os.stat(exe).st_ino
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    reloaded(d, start=mark)
    assert os.stat("/proc/%d/exe" % d.pid).st_ino == ino
    assert exchange(addr, b"y") == b"y"
    assert d.stop() == 0


@case
def exec_fails_late_old_workers_retired_new_ones_serve():
    """The binary passes the checks but execve refuses it (ENOEXEC): by
    then the old workers' channels are sealed, so they are retired like a
    reload would - the connection one holds is served to its end and still
    counted - and fresh workers take the new connections."""
    tmp = tmpdir()
    exe = os.path.join(tmp, "acceptd")
    shutil.copy2(ACCEPTD, exe)
    d = Daemon(["-v", "-l", "127.0.0.1:0", "-b", "echo", "-w", "1"], argv0=[exe])
    addr, = d.listening()
    old = d.wait_line(r"worker 0 pid (\d+) ready").group(1)
    held = connect(addr)
    held.sendall(b"a")
    assert held.recv(1) == b"a"
    with open(exe + ".new", "w") as f:
        f.write("not a program\n")
    os.chmod(exe + ".new", 0o755)
    os.rename(exe + ".new", exe)
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: cannot execute .*acceptd: Exec format error; still serving",
                start=mark)
    new = d.wait_line(r"worker 0 pid (\d+) ready", start=mark).group(1)
    assert new != old
    assert exchange(addr, b"new") == b"new"
    held.sendall(b"b")
    assert held.recv(1) == b"b"
    wait_counters(d, active=1, total=2)
    held.close()
    d.wait_line(r"worker pid %s from before the reload exited; its 1 connection\(s\) ended"
                % old, start=mark)
    wait_counters(d, active=0, total=2)
    assert "lost" not in "\n".join(d.lines[mark:]), d.log()
    assert d.stop() == 0


def persistent_workers_replaced(argv):
    """An old persistent worker keeps its connection across a reload: its
    DONE then fails (EPIPE), which the contrib workers ignore, and the new
    image counts the connection until the worker exits."""
    d = Daemon(["-v", "-l", "127.0.0.1:0", "--fd-passing", "-w", "1", "--"] + argv)
    addr, = d.listening()
    old = d.wait_line(r"worker 0 pid (\d+) ready").group(1)
    held = connect(addr)
    assert held.recv(100).startswith(b"worker %s:" % old.encode())
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    reloaded(d, start=mark)
    new = d.wait_line(r"worker 0 pid (\d+) ready", start=mark).group(1)
    c = connect(addr)
    assert c.recv(100).startswith(b"worker %s:" % new.encode())
    c.close()
    held.sendall(b"still")
    assert held.recv(5) == b"still"
    wait_counters(d, active=1, total=2)
    held.close()
    d.wait_line(r"worker pid %s from before the reload exited; its 1 connection\(s\) ended"
                % old, start=mark)
    wait_counters(d, active=0, total=2)
    assert d.stop() == 0


@case
def persistent_c_worker_replaced():
    w = os.environ.get("ACCEPTD_C_WORKER")
    if not w or not os.path.exists(w):
        raise Skip("ACCEPTD_C_WORKER not built (run through make check)")
    persistent_workers_replaced([w])


@case
def persistent_python_worker_replaced():
    w = os.environ.get("ACCEPTD_PY_WORKER")
    if not w:
        raise Skip("ACCEPTD_PY_WORKER not set (run through make check)")
    persistent_workers_replaced([sys.executable, w])


@case
def reload_of_an_inetd_wait_listener():
    """-i (inetd wait): the socket came on fd 0, and comes back to the new
    image through LISTEN_FDS like any other."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    port = lst.getsockname()[1]
    with lst:                   # ours closes once acceptd holds it
        d = Daemon(["-i", "-b", "echo", "-w", "1"], stdin=lst.fileno())
        d.listening()
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    reloaded(d, start=mark)
    assert exchange("127.0.0.1:%d" % port, b"hey") == b"hey"
    assert d.stop() == 0


@case
def reload_after_dropping_privileges():
    """The new image starts as the dropped user: it proves the drop again
    instead of failing for not being root, and keeps serving as that user."""
    if os.geteuid() != 0:
        raise Skip("needs root to drop to nobody")
    import pwd
    nobody = pwd.getpwnam("nobody")
    if not os.access(ACCEPTD, os.X_OK, effective_ids=False) or \
            subprocess.run(["setpriv", "--reuid", str(nobody.pw_uid), "--regid",
                            str(nobody.pw_gid), "--clear-groups", "test", "-x", ACCEPTD],
                           timeout=10).returncode != 0:
        raise Skip("the built binary is not executable by nobody here")
    d = Daemon(["-u", "nobody", "-l", "127.0.0.1:0", "-b", "echo", "-w", "1"])
    addr, = d.listening()
    # Not dumpable, in every image: /proc/PID/fd stays root's, so nothing
    # running as nobody (a handler) can ptrace the master or take its fds.
    assert os.stat("/proc/%d/fd" % d.pid).st_uid == 0
    for i in range(2):
        mark = len(d.lines)
        d.signal(signal.SIGHUP)
        reloaded(d, start=mark)
        d.wait_line(r"running as nobody \(uid %d" % nobody.pw_uid, start=mark)
        assert exchange(addr, b"x") == b"x"
        with open("/proc/%d/status" % d.pid) as f:
            uids = re.search(r"^Uid:\s+(.*)$", f.read(), re.M).group(1).split()
        assert uids == [str(nobody.pw_uid)] * 4, uids
        assert os.stat("/proc/%d/fd" % d.pid).st_uid == 0, "dumpable again after a reload"
    assert d.stop() == 0


class PyLoad:
    """Clients that connect, send, half-close and check the echo, in a loop."""

    def __init__(self, port, clients=4):
        self.port, self.stop, self.ok, self.bad = port, False, 0, []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def loop(self):
        while not self.stop:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
                    c.sendall(b"ping")
                    c.shutdown(socket.SHUT_WR)
                    got = b""
                    while True:
                        b = c.recv(64)
                        if not b:
                            break
                        got += b
                res = got == b"ping"
            except OSError as e:
                res = False
                got = repr(e)
            with self.lock:
                if res:
                    self.ok += 1
                else:
                    self.bad.append(got)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join(15)
        return self.ok, self.bad


def reload_at_soft_fd_limit(soft, args):
    """SIGHUP under a low soft RLIMIT_NOFILE (systemd starts services at
    1024): the fds that cross the exec are arranged within the limit."""
    import resource

    def low():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    d = Daemon(["-v", "-l", "127.0.0.1:0", "-l", "[::1]:0"] + args, preexec_fn=low)
    addrs = d.listening(2)
    with open("/proc/%d/limits" % d.pid) as f:
        line = [ln for ln in f if ln.startswith("Max open files")][0]
    assert int(line.split()[3]) == soft, line
    for i in range(3):
        d.signal(signal.SIGHUP)
        reloaded(d, i + 1)
    assert "cannot arrange" not in d.log(), d.log()
    for a in addrs:
        assert exchange(a, b"after\n") == b"after\n", d.log()
    assert d.stop() == 0


def fds_flat_over_reloads(args):
    d = Daemon(["-l", "127.0.0.1:0"] + args)
    addr, = d.listening()
    assert exchange(addr, b"x") == b"x"
    before = fd_targets(d.pid)
    for i in range(20):
        d.signal(signal.SIGHUP)
        reloaded(d, i + 1)
    assert exchange(addr, b"x") == b"x"
    after = fd_targets(d.pid)
    assert not [t for t in after.values() if "memfd" in t], after
    assert len(after) == len(before), (before, after)
    assert d.stop() == 0


@case
def twenty_reloads_leave_no_fd_behind_spawn():
    fds_flat_over_reloads(["--", "/bin/cat"])


@case
def twenty_reloads_leave_no_fd_behind_pool():
    fds_flat_over_reloads(["-b", "echo", "-w", "2"])


@case
def state_naming_a_stranger_is_not_trusted():
    """The reload state names pids the new image will count and signal
    (at -t, at the drain): a pid that is not acceptd's child - here a
    process group of ours - is ignored, never signalled."""
    # Never pid 1 here: a regression would signal every process (-1).
    strangers = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(2)]
    child, worker = (p.pid for p in strangers)
    try:
        fd = os.memfd_create("acceptd-reexec", 0)
        os.write(fd, b"acceptd-reexec 1\ncounters 5 0 0\n"
                 b"child %d 0 0 4 7f000001000000000000000000000000 1\n"
                 b"worker %d 1\nheld 4 7f000001000000000000000000000000 2\n"
                 % (child, worker))
        d = Daemon(["-t", "1", "--drain", "1", "-l", "127.0.0.1:0", "--", "/bin/cat"],
                   pass_fds=(fd,), extra_env={"ACCEPTD_REEXEC": str(fd)})
        os.close(fd)
        d.listening()
        for pid in (child, worker):
            d.wait_line(r"reload: pid %d in the state is no child of ours; ignored" % pid)
        assert counters(d)["active"] == 0, d.log()
        # Had they been adopted, -t or the drain would have ended them.
        assert d.stop() == 0, d.log()
        for p in strangers:
            assert p.poll() is None, "acceptd signalled a process that is not its child"
    finally:
        for p in strangers:
            p.kill()
            p.wait(10)


def every_port_answers(addrs):
    for a in addrs:
        assert exchange(a, b"p") == b"p", a


@case
def sixty_five_own_listeners_all_survive_reloads():
    """63 --listen plus one name that resolves to two addresses: 65
    listeners, more than any fixed table held; every one crosses each
    reload and still answers."""
    if not has_ipv6():
        raise Skip("no IPv6 on loopback")
    # A name with two addresses, in a mount namespace of acceptd's own
    # (this host's localhost may have one).
    hosts = os.path.join(tmpdir(), "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 two.test\n::1 two.test\n")
    in_ns = ["unshare", "-m", "sh", "-c",
             'mount --bind "$0" /etc/hosts && exec "$@"', hosts, ACCEPTD]
    args = []
    for _ in range(63):
        args += ["-l", "127.0.0.1:0"]
    d = Daemon(args + ["-l", "two.test:0", "-b", "echo", "-w", "1"], argv0=in_ns)
    addrs = d.listening(65)
    assert len(set(addrs)) == 65, addrs
    for i in range(3):
        d.signal(signal.SIGHUP)
        reloaded(d, i + 1)
    kept = re.findall(r"listening on (\S+) \(kept across the reload\)", d.log())
    assert sorted(kept[-65:]) == sorted(addrs), d.log()
    every_port_answers(addrs)
    assert d.stop() == 0


@case
def three_hundred_inherited_listeners_all_survive_a_reload():
    """LISTEN_FDS with 300 sockets (a socket unit may have that many):
    none is closed at the exec."""
    socks = []
    for _ in range(300):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        socks.append(ls)
    addrs = ["127.0.0.1:%d" % ls.getsockname()[1] for ls in socks]
    fds = [ls.fileno() for ls in socks]
    d = Daemon([str(f) for f in fds] + ["--", ACCEPTD, "-b", "echo", "-w", "1"],
               argv0=[sys.executable, LISTEN_EXEC], pass_fds=fds)
    for ls in socks:
        ls.close()
    d.listening(300)
    d.signal(signal.SIGHUP)
    reloaded(d)
    every_port_answers(addrs)
    assert d.stop() == 0


@case
def reload_at_systemds_default_fd_limit():
    reload_at_soft_fd_limit(1024, ["--", "/bin/cat"])
    reload_at_soft_fd_limit(1024, ["-b", "echo", "-w", "2"])


@case
def reload_at_a_soft_fd_limit_of_64():
    reload_at_soft_fd_limit(64, ["-c", "8", "--", "/bin/cat"])
    reload_at_soft_fd_limit(64, ["-c", "8", "-b", "echo", "-w", "2"])


def hundred_reloads(args, secs_per_reload):
    d = Daemon(["-l", "127.0.0.1:0"] + args)
    addr, = d.listening()
    port = port_of(addr)
    pid = d.pid
    cb = connbench_binary()
    n = 100
    dur = int(n * secs_per_reload) + 3
    if cb:
        load = subprocess.Popen([cb, "-c", "8", "-d", str(dur), "-T", "10000", "-p", "ping",
                                 "-E", "-q", "127.0.0.1", str(port)],
                                stdout=subprocess.PIPE, text=True)
    else:
        load = PyLoad(port)
    try:
        # The load running before the first reload: connections served.
        wait_until(lambda: counters(d)["total"] >= 8, 10, "the load to be served",
                   interval=0.05)
        for i in range(n):
            mark = len(d.lines)
            d.signal(signal.SIGHUP)
            reloaded(d, start=mark)
            time.sleep(secs_per_reload / 2)
    finally:
        if cb:
            out, _ = load.communicate(timeout=dur + 30)
        else:
            ok, bad = load.finish()
    assert d.pid == pid and d.proc.poll() is None
    if cb:
        m = re.search(r"ok=(\d+) errors=(\d+)", out)
        assert m, out
        assert int(m.group(1)) > 0 and int(m.group(2)) == 0, out
        summary = out.strip()
    else:
        assert ok > 0 and not bad, (ok, bad[:5])
        summary = "python load: %d ok" % ok
    assert sum(1 for ln in d.lines if "reload: done" in ln) == n
    assert not re.search(r"error|warning", d.log()), d.log()
    assert d.stop() == 0
    return summary


@case
def hundred_reloads_under_load_pool():
    print("# " + hundred_reloads(["-b", "echo", "-w", "2"], 0.05))


@case
def hundred_reloads_under_load_spawn():
    print("# " + hundred_reloads(["--", "/bin/cat"], 0.05))


run()
