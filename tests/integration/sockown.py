"""sockown.py - --socket-user and --socket-group (systemd's SocketUser=,
SocketGroup=): the unix socket files acceptd binds get that owner and
group, with --socket-mode (or the umask) as their mode, by names or by
numbers, and so decide who may connect; with -u the socket is still right
after the drop and after a reload (never given again). A socket acceptd
did not bind (inetd, systemd) is left alone, with a warning. Not root and
asked for another owner: exit 1 naming the option, and a reload by an
image that dropped root fails cleanly instead of killing the daemon.

The owner is given as root, so it must never land anywhere but the socket
acceptd bound: a directory anyone may write (not sticky) is refused, and a
file swapped in between the bind and the chown - a symlink to a root file,
another program's socket - is refused and left untouched. The swap is
made inside that window deterministically: strace holds acceptd's one
bind(2) for DELAY after it returned (the file exists, nothing else is done
yet), and the test replaces the file meanwhile.

Every case needs root (owners other than oneself can only be given by
root); CI runs as root, so they run there."""
import errno
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from acceptd_test import (ACCEPTD, Daemon, Skip, case, exchange, run,  # noqa: E402
                          run_acceptd, tmpdir, traced_acceptd, wait_until)

NOBODY = pwd.getpwnam("nobody")
STRACE = shutil.which("strace")
DELAY = "2s"        # the window strace holds open: the test swaps within it


# --- helpers local to this file --------------------------------------------

def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root: only root can give a socket another owner")


def other_group():
    """A group that is neither root's nor nobody's primary one."""
    for name in ("daemon", "bin", "sys", "users"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in (0, NOBODY.pw_gid):
            return g
    raise Skip("no group other than root and nobody's to try")


def open_dir(mode=0o755):
    """A fresh directory others may enter (tmpdir() is 0700)."""
    d = tmpdir()
    os.chmod(d, mode)
    return d


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def connect_as(path, uid, gid, groups=()):
    """Connect to unix socket path from a child running as uid/gid and
    exchange a line; 0 if it was echoed, else the errno (EACCES: the
    file's permissions said no)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(path)
                s.sendall(b"hi\n")
                code = 0 if s.recv(3) == b"hi\n" else 1
        except OSError as e:
            code = e.errno if 0 < e.errno < 126 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def traced(args):
    """acceptd under strace, held DELAY after its bind: the window between
    the bind and whatever comes next (these runs bind one unix socket and
    nothing else)."""
    if not STRACE:
        raise Skip("strace is not installed")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "NOTIFY_SOCKET", "JOURNAL_STREAM"))}
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return Daemon(["-qq", "-e", "trace=bind", "-e", "inject=bind:delay_exit=" + DELAY,
                   ACCEPTD] + args,
                  argv0=[STRACE], env=env)


def in_the_window(path):
    """Wait until acceptd has bound path and is held after the bind."""
    wait_until(lambda: os.path.lexists(path), 10, "%s to be bound" % path)


def after_the_window(d):
    """Wait until the traced acceptd is past the ownership step: exited,
    or started (what a run that gave the swapped file away does)."""
    wait_until(lambda: d.proc.poll() is not None or "started acceptd" in d.log(), 20,
               "acceptd to refuse or start; log:\n" + d.log())


def born_closed(path):
    """Before its owner is given, the file is root's and 0200: nobody
    else may connect yet."""
    uid, gid, mode = owner(path)
    assert (uid, mode) == (0, 0o200), \
        "before its owner is given the socket must be root's and 0200, is uid %d %04o" % (
            uid, mode)


# --- 1. what the socket gets -----------------------------------------------

@case
def owner_group_and_mode_by_name_and_number():
    need_root()
    g = other_group()
    d0 = open_dir()
    rows = [
        # args, want uid, gid, mode (umask 022 at start)
        (["--socket-user", "nobody", "--socket-group", g.gr_name, "--socket-mode", "0660"],
         NOBODY.pw_uid, g.gr_gid, 0o660),
        # a user alone brings its primary group; the mode is the umask's
        (["--socket-user", "nobody"], NOBODY.pw_uid, NOBODY.pw_gid, 0o755),
        # a group alone: the owner stays root
        (["--socket-group", str(g.gr_gid), "--socket-mode", "0660"], 0, g.gr_gid, 0o660),
        # numbers without a passwd/group entry
        (["--socket-user", "4242", "--socket-group", "4343", "--socket-mode", "0600"],
         4242, 4343, 0o600),
    ]
    for args, uid, gid, mode in rows:
        path = os.path.join(d0, "s.sock")
        d = Daemon(args + ["-l", "unix:" + path], preexec_fn=lambda: os.umask(0o022))
        addr, = d.listening()
        assert owner(path) == (uid, gid, mode), "%s: got uid %d gid %d mode %04o" % (
            args, *owner(path))
        assert exchange(addr, b"ok") == b"ok"
        assert d.stop() == 0, d.log()
        assert not os.path.exists(path), "%s: socket left behind" % args


@case
def the_owner_decides_who_connects():
    need_root()
    g = other_group()
    d0 = open_dir()
    path = os.path.join(d0, "who.sock")
    d = Daemon(["--socket-user", "nobody", "--socket-group", g.gr_name,
                "--socket-mode", "0660", "-l", "unix:" + path])
    d.listening()
    # the owner, a member of the group, and a stranger
    assert connect_as(path, NOBODY.pw_uid, NOBODY.pw_gid) == 0
    assert connect_as(path, 4243, g.gr_gid) == 0
    assert connect_as(path, 4244, 4244) == errno.EACCES
    assert d.stop() == 0, d.log()
    # without the options (the same mode) only root's group would get in
    path = os.path.join(d0, "root.sock")
    d = Daemon(["--socket-mode", "0660", "-l", "unix:" + path])
    d.listening()
    assert connect_as(path, NOBODY.pw_uid, NOBODY.pw_gid) == errno.EACCES
    assert d.stop() == 0, d.log()


@case
def with_user_the_socket_stays_right_after_the_drop_and_a_reload():
    need_root()
    d0 = open_dir()
    path = os.path.join(d0, "drop.sock")
    d = Daemon(["-u", "nobody", "--socket-user", "nobody", "--socket-mode", "0600",
                "-l", "unix:" + path])
    d.listening()
    d.wait_line(r"running as nobody")
    want = (NOBODY.pw_uid, NOBODY.pw_gid, 0o600)
    ino = os.stat(path).st_ino
    assert owner(path) == want, owner(path)
    assert connect_as(path, NOBODY.pw_uid, NOBODY.pw_gid) == 0
    assert connect_as(path, 4244, 4244) == errno.EACCES
    # the new image (nobody already) keeps the socket: nothing to give
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"listening on unix:%s \(kept across the reload\)$" % re.escape(path),
                start=mark)
    d.wait_line(r"reload: done", start=mark)
    assert os.stat(path).st_ino == ino and owner(path) == want, owner(path)
    assert connect_as(path, NOBODY.pw_uid, NOBODY.pw_gid) == 0
    assert d.stop() == 0, d.log()


@case
def a_passed_socket_is_left_alone_with_a_warning():
    d0 = open_dir()
    path = os.path.join(d0, "inetd.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ls:
        ls.bind(path)
        ls.listen(4)
        before = owner(path)
        d = Daemon(["-i", "--socket-user", "nobody"], stdin=ls.fileno())
        d.listening()
        d.wait_line(r"warning: --socket-user/--socket-group ignored: the sockets were "
                    r"passed to acceptd")
        assert owner(path) == before, owner(path)
        assert d.stop() == 0, d.log()


# --- 2. errors ----------------------------------------------------------------

@case
def not_root_and_another_owner_exits_1():
    need_root()
    d0 = open_dir(0o777 | stat.S_ISVTX)      # nobody may bind here, like /tmp
    g = other_group()

    def become_nobody():
        os.setgroups([])
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)
    for args, named in ((["--socket-user", "daemon"], "--socket-user daemon"),
                        (["--socket-group", g.gr_name], "--socket-group " + g.gr_name)):
        path = os.path.join(d0, "x.sock")
        rc, _out, err = run_acceptd(args + ["-l", "unix:" + path], preexec_fn=become_nobody)
        assert rc == 1, "%s: exit %d, want 1; %s" % (args, rc, err)
        assert named in err[-1] and "not root" in err[-1], err
        assert "Operation not permitted" in err[-1], err
        assert not os.path.lexists(path), "%s: the socket was left behind" % args
    # giving a socket to oneself needs no privilege
    path = os.path.join(d0, "self.sock")
    d = Daemon(["--socket-user", "nobody", "--socket-mode", "0600", "-l", "unix:" + path],
               preexec_fn=become_nobody)
    d.listening()
    assert owner(path) == (NOBODY.pw_uid, NOBODY.pw_gid, 0o600)
    assert d.stop() == 0, d.log()


@case
def a_directory_others_may_write_is_refused():
    need_root()
    for mode in (0o777, 0o770):
        d0 = open_dir(mode)
        path = os.path.join(d0, "ww.sock")
        rc, _out, err = run_acceptd(["--socket-user", "nobody", "-l", "unix:" + path])
        assert rc == 1, "mode %04o: exit %d, want 1; %s" % (mode, rc, err)
        assert "--socket-user nobody" in err[-1] and d0 in err[-1], err
        assert "writable by others" in err[-1], err
        assert not os.path.lexists(path), "nothing is bound there"
    # sticky, as /tmp is: only the file's owner (root) may move it
    d0 = open_dir(0o777 | stat.S_ISVTX)
    path = os.path.join(d0, "sticky.sock")
    d = Daemon(["--socket-user", "nobody", "-l", "unix:" + path])
    d.listening()
    assert owner(path)[0] == NOBODY.pw_uid
    assert d.stop() == 0, d.log()


@case
def reload_by_a_dropped_image_that_cannot_give_the_owner_keeps_serving():
    need_root()
    d0 = open_dir()
    mine = os.path.join(d0, "nobodys")      # nobody may bind here
    os.mkdir(mine)
    os.chown(mine, NOBODY.pw_uid, NOBODY.pw_gid)
    kept, new = os.path.join(d0, "kept.sock"), os.path.join(mine, "new.sock")
    conf = os.path.join(d0, "acceptd.conf")

    def write(text):
        with open(conf + ".new", "w") as f:
            f.write(text)
        os.rename(conf + ".new", conf)
    base = "user = nobody\nsocket-mode = 0660\nlisten = unix:%s\n" % kept
    write(base + "socket-user = daemon\n")
    d = Daemon(["--config", conf])
    d.listening()
    still = "; still serving with the old configuration$"
    # a new path the new image (nobody) could bind, but not give to daemon
    write(base + "socket-user = daemon\nlisten = unix:%s\n" % new)
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: --socket-user daemon: cannot give unix:%s away: acceptd runs "
                r"as uid %d, not root%s" % (re.escape(new), NOBODY.pw_uid, still),
                start=mark)
    assert not os.path.lexists(new)
    # a new path in a directory nobody cannot write: the reload says so
    # rather than the new image dying at its bind
    write(base + "socket-user = nobody\nlisten = unix:%s/root.sock\n" % d0)
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: cannot listen on unix:%s/root.sock: Permission denied%s"
                % (re.escape(d0), still), start=mark)
    assert exchange("unix:" + kept, b"alive") == b"alive"
    assert owner(kept)[0] == pwd.getpwnam("daemon").pw_uid
    # one nobody can give: done, and the kept socket is not given again
    write(base + "socket-user = nobody\nlisten = unix:%s\n" % new)
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"listening on unix:%s$" % re.escape(new), start=mark)
    d.wait_line(r"reload: done", start=mark)
    assert owner(new) == (NOBODY.pw_uid, NOBODY.pw_gid, 0o660), owner(new)
    assert owner(kept)[0] == pwd.getpwnam("daemon").pw_uid
    assert d.stop() == 0, d.log()


# --- 3. a file swapped in after the bind is never given away -------------------

@case
def a_symlink_swapped_in_is_not_followed():
    need_root()
    d0 = open_dir()
    victim = os.path.join(d0, "victim")
    with open(victim, "w") as f:
        f.write("root's\n")
    os.chmod(victim, 0o600)
    path = os.path.join(d0, "swap.sock")
    d = traced(["--socket-user", "nobody", "--socket-mode", "0666", "-l", "unix:" + path])
    in_the_window(path)
    os.rename(path, path + ".away")
    os.symlink(victim, path)
    after_the_window(d)
    assert owner(victim) == (0, 0, 0o600), "the victim was changed: uid %d gid %d %04o" % (
        owner(victim))
    assert os.path.islink(path), "the planted link was removed"
    assert d.wait(20) == 1, d.log()
    d.wait_line(r"--socket-user nobody: unix:%s is no longer the socket acceptd bound "
                r"\(replaced since\); left as it is" % re.escape(path))


@case
def another_socket_swapped_in_is_not_given_away():
    need_root()
    d0 = open_dir()
    path = os.path.join(d0, "swap2.sock")
    theirs = os.path.join(d0, "theirs.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(theirs)
        other.listen(4)
        os.chmod(theirs, 0o600)
        d = traced(["--socket-user", "nobody", "--socket-mode", "0666",
                    "-l", "unix:" + path])
        in_the_window(path)
        os.rename(theirs, path)
        after_the_window(d)
        assert owner(path) == (0, 0, 0o600), \
            "their socket was changed: uid %d gid %d %04o" % owner(path)
        assert d.wait(20) == 1, d.log()
        d.wait_line(r"unix:%s is no longer the socket acceptd bound" % re.escape(path))


@case
def the_window_then_the_owner():
    """Nothing swapped: the traced run ends like an untraced one (so the
    two cases above fail for the swap, not for strace)."""
    need_root()
    d0 = open_dir()
    path = os.path.join(d0, "calm.sock")
    d = traced(["--socket-user", "nobody", "--socket-mode", "0660", "-l", "unix:" + path])
    in_the_window(path)
    born_closed(path)
    d.listening(timeout=20)
    assert owner(path) == (NOBODY.pw_uid, NOBODY.pw_gid, 0o660), owner(path)
    assert connect_as(path, NOBODY.pw_uid, NOBODY.pw_gid) == 0
    pid = wait_until(lambda: traced_acceptd(d.pid), 10, "acceptd under strace")
    os.kill(pid, signal.SIGTERM)
    assert d.wait(20) == 0, d.log()


run()
