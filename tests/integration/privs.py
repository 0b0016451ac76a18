"""privs.py - -u/--user USER[:GROUP]: once the listeners exist acceptd runs
as USER, and so does everything it starts - spawn handlers, built-in
workers, persistent --fd-passing workers: real, effective, saved and fs
uid and gid all the target, no supplementary groups for nobody (just GROUP
when one is given), every capability set empty, and root out of reach.
A privileged port bound before the drop keeps serving.  Errors: an unknown
user or group is a usage error (exit 2, one line naming --user and the
value, before any socket exists); --user when not root exits 1.

The ids are read from /proc/PID/status of the processes themselves while
they run (found as acceptd's children, or from -v's worker lines), so the
cases that start acceptd as root skip, with the reason, when the tests do
not run as root."""
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "helpers"))
from acceptd_test import (ACCEPTD, Daemon, Skip, case, connect, exchange,  # noqa: E402
                          proc_children, read_all, run, run_acceptd, tmpdir, wait_until,
                          write_script)
from svcmgr import ServiceManager  # noqa: E402

PY_WORKER = os.environ.get("ACCEPTD_PY_WORKER")
HOLD = ["/bin/sh", "-c", "printf x; exec cat >/dev/null"]
NOBODY = pwd.getpwnam("nobody")
CAPS = ("CapInh", "CapPrm", "CapEff", "CapAmb")
# A careless parent: acceptd starts with root's supplementary groups 0 and
# 4 and CAP_NET_BIND_SERVICE inheritable and ambient - all of which must
# be gone after the drop (the uid change alone does not clear CapInh).
SETPRIV = shutil.which("setpriv")
CARELESS = ([SETPRIV, "--groups", "0,4", "--inh-caps", "+net_bind_service",
             "--ambient-caps", "+net_bind_service"] if SETPRIV else []) + [ACCEPTD]

# Tries every way back to root; prints what each attempt did, and the ids.
REGAIN = r"""
import json, os, sys
tries = {"setuid": lambda: os.setuid(0), "seteuid": lambda: os.seteuid(0),
         "setresuid": lambda: os.setresuid(0, 0, 0), "setgid": lambda: os.setgid(0),
         "setegid": lambda: os.setegid(0), "setgroups": lambda: os.setgroups([0])}
out = {}
for name, fn in tries.items():
    try:
        fn()
        out[name] = "succeeded"
    except PermissionError:
        out[name] = "PermissionError"
    except OSError as e:
        out[name] = "OSError %d" % e.errno
out["resuid"] = os.getresuid()
out["resgid"] = os.getresgid()
sys.stdout.write(json.dumps(out) + "\n")
"""


# --- helpers local to this file --------------------------------------------

def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root: -u/--user can only be tested by a root acceptd")


_python = []


def nobody_python():
    """A Python interpreter nobody may run (the one running the tests may
    live under a 0700 home, as pyenv's under /root does)."""
    if not _python:
        for cand in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
            if not cand:
                continue
            try:
                r = subprocess.run([cand, "-c", "import json, socket"], user=NOBODY.pw_uid,
                                   group=NOBODY.pw_gid, extra_groups=[], timeout=20,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError:
                continue
            if r.returncode == 0:
                _python.append(cand)
                break
        else:
            _python.append(None)
    if not _python[0]:
        raise Skip("no Python interpreter that nobody may run")
    return _python[0]


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)


def assert_runs_as(pid, what, uid, gid, groups):
    """uid and gid (real, effective, saved, fs), the supplementary groups
    and the capability sets of a live process."""
    f = status_fields(pid)
    uids = [int(x) for x in f["Uid"].split()]
    gids = [int(x) for x in f["Gid"].split()]
    got_groups = sorted(int(x) for x in f["Groups"].split())
    assert uids == [uid] * 4, "%s (pid %d): Uid %s, want %d everywhere" % (what, pid, uids, uid)
    assert gids == [gid] * 4, "%s (pid %d): Gid %s, want %d everywhere" % (what, pid, gids, gid)
    assert got_groups == sorted(groups), "%s (pid %d): Groups %s, want %s" % (
        what, pid, got_groups, sorted(groups))
    caps = {k: int(f[k], 16) for k in CAPS}
    assert all(v == 0 for v in caps.values()), "%s (pid %d): capabilities left: %s" % (
        what, pid, {k: "%x" % v for k, v in caps.items()})


def live_children(pid):
    return [p for p, state in proc_children(pid) if state not in ("Z", "X")]


def free_privileged_port():
    """A port below 1024 that is free on 127.0.0.1 right now."""
    for port in range(1023, 512, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise Skip("no free port below 1024 on 127.0.0.1")


def other_group():
    """A group that is not nobody's own, for -u nobody:GROUP."""
    for name in ("daemon", "users", "bin", "sys"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in (0, NOBODY.pw_gid):
            return g
    raise Skip("no group other than root and nobody's to try")


def become_nobody():
    os.setgroups([])
    os.setgid(NOBODY.pw_gid)
    os.setuid(NOBODY.pw_uid)


# --- 1. -u nobody: master, spawn handler, built-in and persistent workers ----

@case
def nobody_master_and_spawn_handler():
    need_root()
    uid, gid = NOBODY.pw_uid, NOBODY.pw_gid
    low = free_privileged_port()
    with ServiceManager() as mgr:
        # The notify socket is reachable for nobody, as systemd's is:
        # READY=1 goes out after the drop.
        d = mgr.start(["-u", "nobody", "-l", "127.0.0.1:%d" % low, "-l", "127.0.0.1:0",
                       "--"] + HOLD, argv0=CARELESS)
        addrs = d.listening(2)
        assert addrs[0] == "127.0.0.1:%d" % low, addrs
        mgr.ready(d)
        assert_runs_as(d.pid, "acceptd", uid, gid, [])
        for a in addrs:
            c = connect(a)
            assert c.recv(1) == b"x", a
            kids = wait_until(lambda: live_children(d.pid), 5, "the handler")
            assert len(kids) == 1, kids
            assert_runs_as(kids[0], "handler on %s" % a, uid, gid, [])
            c.close()
            wait_until(lambda: not live_children(d.pid), 10, "the handler to end")
        assert d.stop() == 0, d.log()


@case
def nobody_builtin_worker():
    need_root()
    d = Daemon(["-v", "-u", "nobody", "-b", "echo", "-w", "1",
                "-l", "127.0.0.1:0"], argv0=CARELESS)
    addr, = d.listening()
    wpid = int(d.wait_line(r"worker 0 pid (\d+) ready$").group(1))
    assert live_children(d.pid) == [wpid], (live_children(d.pid), wpid)
    assert exchange(addr, b"echo as nobody") == b"echo as nobody"
    assert_runs_as(d.pid, "acceptd", NOBODY.pw_uid, NOBODY.pw_gid, [])
    assert_runs_as(wpid, "built-in worker", NOBODY.pw_uid, NOBODY.pw_gid, [])
    assert d.stop() == 0, d.log()


@case
def nobody_persistent_worker():
    need_root()
    if not PY_WORKER:
        raise Skip("ACCEPTD_PY_WORKER not set (run through make check)")
    d = Daemon(["-v", "-u", "nobody", "--fd-passing", "-w", "1",
                "-l", "127.0.0.1:0", "--", nobody_python(), PY_WORKER], argv0=CARELESS)
    addr, = d.listening()
    wpid = int(d.wait_line(r"worker 0 pid (\d+) ready$").group(1))
    with connect(addr) as c:
        line = b""
        while not line.endswith(b"\n"):
            b = c.recv(4096)
            assert b, "worker closed before its first line: %r" % line
            line += b
        assert line.startswith(b"worker %d:" % wpid), line
        assert_runs_as(wpid, "persistent worker", NOBODY.pw_uid, NOBODY.pw_gid, [])
        c.sendall(b"ping")
        assert c.recv(4) == b"ping"
    assert_runs_as(d.pid, "acceptd", NOBODY.pw_uid, NOBODY.pw_gid, [])
    assert d.stop() == 0, d.log()


# --- 2. -u nobody:GROUP --------------------------------------------------------

@case
def nobody_with_group():
    need_root()
    g = other_group()
    for spec in ("nobody:" + g.gr_name, "nobody:%d" % g.gr_gid):
        d = Daemon(["-u", spec, "-l", "127.0.0.1:0", "--"] + HOLD, argv0=CARELESS)
        addr, = d.listening()
        assert_runs_as(d.pid, "acceptd -u %s" % spec, NOBODY.pw_uid, g.gr_gid, [g.gr_gid])
        c = connect(addr)
        assert c.recv(1) == b"x"
        kid, = wait_until(lambda: live_children(d.pid), 5, "the handler")
        assert_runs_as(kid, "handler of -u %s" % spec, NOBODY.pw_uid, g.gr_gid, [g.gr_gid])
        c.close()
        assert d.stop() == 0, d.log()


# --- 3. errors ---------------------------------------------------------------------

@case
def unknown_user_or_group_is_a_usage_error():
    t = tmpdir()
    for spec, value in (("acceptd-no-such-user", "acceptd-no-such-user"),
                        ("nobody:acceptd-no-such-group", "acceptd-no-such-group"),
                        ("acceptd-no-such-user:" + grp.getgrgid(NOBODY.pw_gid).gr_name,
                         "acceptd-no-such-user")):
        path = os.path.join(t, "never.sock")
        rc, out, err = run_acceptd(["-u", spec, "-l", "unix:" + path, "-l", "127.0.0.1:0"])
        assert rc == 2, "-u %s: exit %d, want 2; stderr %s" % (spec, rc, err)
        assert out == "" and len(err) == 1, "-u %s: want one stderr line: %r" % (spec, err)
        msg = err[0]
        assert msg.startswith("acceptd: "), msg
        assert "--user" in msg and value in msg, "%r does not name --user and %r" % (msg, value)
        # A usage error: found before any socket was made.
        assert not os.path.exists(path), "-u %s: %s was created" % (spec, path)


@case
def user_when_not_root_exits_1():
    pre = become_nobody if os.geteuid() == 0 else None
    rc, out, err = run_acceptd(["-u", "nobody", "-l", "127.0.0.1:0", "--", "/bin/cat"],
                               preexec_fn=pre)
    assert rc == 1, "exit %d, want 1; stderr %s" % (rc, err)
    assert err and "--user" in err[-1], "last line does not name --user: %r" % err
    assert not [ln for ln in err if "started acceptd" in ln], err


# --- 4. root cannot be regained ------------------------------------------------------

@case
def handler_cannot_regain_root():
    need_root()
    t = tmpdir()
    os.chmod(t, 0o755)
    script = write_script(t, "regain.py", REGAIN)
    d = Daemon(["-u", "nobody", "-l", "127.0.0.1:0", "--",
                nobody_python(), script], argv0=CARELESS)
    addr, = d.listening()
    with connect(addr) as c:
        out = read_all(c)
    rep = json.loads(out)
    fails = {k: v for k, v in rep.items() if k not in ("resuid", "resgid") and
             v != "PermissionError"}
    assert not fails, "the handler got (part of) root back: %s" % fails
    assert rep["resuid"] == [NOBODY.pw_uid] * 3, rep
    assert rep["resgid"] == [NOBODY.pw_gid] * 3, rep
    assert d.stop() == 0, d.log()


@case
def config_only_root_may_read_is_warned_and_a_reload_keeps_serving():
    """After -u the file is re-read on SIGHUP as that user: a file only
    root may read is said at start, and a reload then fails, logged, with
    the old image serving."""
    need_root()
    top = tmpdir()
    os.chmod(top, 0o755)        # the file's own mode is what is tested
    conf = os.path.join(top, "root-only.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:0\nbuiltin = echo\n")
    os.chmod(conf, 0o600)
    d = Daemon(["-u", "nobody", "--config", conf])
    addr, = d.listening()
    d.wait_line(r"warning: --config %s: not readable as --user nobody "
                r"\(Permission denied\): a reload would fail" % re.escape(conf))
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"%s.*Permission denied.*still serving" % re.escape(conf), start=mark)
    assert exchange(addr, b"still") == b"still"
    os.chmod(conf, 0o644)       # readable by nobody now: the next reload works
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: done", start=mark)
    assert exchange(addr, b"again") == b"again"
    assert d.stop() == 0, d.log()


run()
