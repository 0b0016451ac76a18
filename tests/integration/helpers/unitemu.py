"""unitemu.py - acceptd's systemd units as built, read and run without a
running systemd: parse a unit (with %i), turn ExecStart=/ExecReload= into
argv, and run a socket+service pair the way systemd would - the socket
from systemd-socket-activate, the service as DynamicUser= and friends make
it (setpriv), a NOTIFY_SOCKET from svcmgr.py.  Used by units.py (the units
themselves) and readme.py (the README's systemd guides)."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from acceptd_test import (ACCEPTD, Daemon, Skip, exchange, free_port,  # noqa: E402
                          tmpdir)
from svcmgr import ServiceManager  # noqa: E402

UNITDIR = os.environ.get("ACCEPTD_UNITDIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(ACCEPTD))), "units")
SBINDIR = os.environ.get("ACCEPTD_SBINDIR")
SYSCONFDIR = os.environ.get("ACCEPTD_SYSCONFDIR")
SSA = shutil.which("systemd-socket-activate")
SETPRIV = shutil.which("setpriv")
# What systemd gives a system service, so a handler found by PATH is found.
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --- reading units -----------------------------------------------------------

def unit_path(name):
    p = os.path.join(UNITDIR, name)
    if not os.path.exists(p):
        raise AssertionError("%s not built (ACCEPTD_UNITDIR=%s)" % (name, UNITDIR))
    return p


def parse_unit(name, instance=None):
    """{section: [(key, value)...]} of a unit file, in order, with the
    specifiers this suite needs (%i, %%) expanded for instance."""
    out, section, pending = {}, None, ""
    with open(unit_path(name)) as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1]
                out.setdefault(section, [])
                continue
            key, _, value = s.partition("=")
            value = value.strip()
            if instance is not None:
                value = re.sub(r"%[i%]", lambda m: instance if m.group(0) == "%i" else "%",
                               value)
            out[section].append((key.strip(), value))
    return out


def get(unit, section, key, default=None):
    """The last value of key (an empty assignment resets a list in
    systemd, and a later one wins for a single value)."""
    vals = [v for k, v in unit.get(section, []) if k == key]
    return vals[-1] if vals else default


def exec_argv(value, mainpid=None):
    """ExecStart=/ExecReload= as argv: no prefixes expected, words quoted
    as systemd does (shlex is the same for what the units use), $MAINPID
    as its own word or ${MAINPID} replaced."""
    assert value and value[0] not in "@-:+!|", "unexpected exec prefix in %r" % value
    words = shlex.split(value)
    if mainpid is not None:
        words = [str(mainpid) if w == "$MAINPID" else w.replace("${MAINPID}", str(mainpid))
                 for w in words]
    assert not any("$" in w for w in words), "unexpanded variable in %r" % value
    return words


def service_argv(svc, conf, want_conf):
    """ExecStart with the build's acceptd and conf in place of the
    installed paths, which must be the configured ones."""
    argv = exec_argv(get(svc, "Service", "ExecStart"))
    if SBINDIR:
        assert argv[0] == os.path.join(SBINDIR, "acceptd"), argv
    assert argv[1:3] == ["--config", want_conf], argv
    return [ACCEPTD, "--config", conf] + argv[3:]


def conf_path(name):
    assert SYSCONFDIR, "ACCEPTD_SYSCONFDIR not set (run through make check)"
    return os.path.join(SYSCONFDIR, "acceptd", name)


def seconds(value):
    """A systemd time span in plain seconds or with s/min units."""
    m = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert m, "time span %r" % value
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


# --- the emulated service manager -------------------------------------------

def world_readable_dir():
    """A temporary directory uid 65534 can read, for configs."""
    d = tmpdir()
    os.chmod(d, 0o755)
    return d


def write_conf(text, name="acceptd.conf"):
    path = os.path.join(world_readable_dir(), name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def sandbox_prefix(*paths):
    """What DynamicUser=yes, CapabilityBoundingSet= and NoNewPrivileges=yes
    do to the process, done with setpriv: when the tests run as root (and
    uid 65534 can reach the binary and paths), an unprivileged uid and
    gid with no groups and no capabilities; else no_new_privs only."""
    if not SETPRIV:
        return []
    nnp = [SETPRIV, "--no-new-privs"]
    if os.geteuid() != 0:
        return nnp
    drop = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    probe = drop + ["/bin/sh", "-c", 'for p; do test -r "$p" || exit 1; done', "sh",
                    ACCEPTD] + list(paths)
    if subprocess.run(probe, timeout=10).returncode != 0:
        print("# uid 65534 cannot read %s: running with no_new_privs only"
              % " ".join([ACCEPTD] + list(paths)), flush=True)
        return nnp
    return drop


def ssa_env_args(mgr):
    """systemd-socket-activate passes only what -E names: what systemd
    gives a service, plus the sanitizers' settings of an ASan build."""
    args = ["-E", "NOTIFY_SOCKET=" + mgr.address, "-E", "PATH=" + SERVICE_PATH]
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            args += ["-E", k]
    return args


def socket_listen(sock_unit, want):
    """The socket unit's single ListenStream= (checked against want) and
    its Accept= as a bool."""
    listens = [v for k, v in sock_unit["Socket"] if k == "ListenStream"]
    assert listens == [want], "ListenStream=%r, want [%r]" % (listens, want)
    return get(sock_unit, "Socket", "Accept", "no") in ("yes", "true", "1", "on")


def need_ssa():
    if not SSA:
        raise Skip("systemd-socket-activate not installed")


def ssa_ready(d, port):
    d.wait_line(r"Listening on 127\.0\.0\.1:%d as 3\." % port)


def echoes(addr, word=b"hello\n"):
    got = exchange(addr, word)
    assert got == word, got


def accept_no_pair(sock_name, svc_name, instance, conf, want_conf, want_listen,
                   port=None, probe=echoes):
    """One Accept=no pair: probe(addr) passes (by default: echo served),
    READY=1, ExecReload reloads in place (RELOADING=1, READY=1, same pid),
    SIGTERM stops it in time.  port: where the socket listens (127.0.0.1),
    default the instance or a free one - as a drop-in would move it."""
    need_ssa()
    sock = parse_unit(sock_name, instance)
    svc = parse_unit(svc_name, instance)
    if port is None:
        port = int(instance) if instance else free_port()
    addr = "127.0.0.1:%d" % port
    assert not socket_listen(sock, want_listen), "%s: Accept=yes" % sock_name
    argv = service_argv(svc, conf, want_conf)
    with ServiceManager() as mgr:
        with Daemon(argv[1:], argv0=[SSA, "-l", "127.0.0.1:%d" % port] + ssa_env_args(mgr) +
                    ["--"] + sandbox_prefix(conf) + [argv[0]], tree=True) as d:
            ssa_ready(d, port)
            # The first connection makes systemd-socket-activate exec it.
            probe(addr)
            mgr.wait("READY=1", pid=d.pid, what="READY=1 from the service")
            probe(addr)

            mark = mgr.mark()
            reload = exec_argv(get(svc, "Service", "ExecReload"), mainpid=d.pid)
            r = subprocess.run(reload, timeout=10, capture_output=True)
            assert r.returncode == 0, (reload, r)
            rel = mgr.wait(lambda m: m.text.startswith("RELOADING=1"), start=mark,
                           what="RELOADING=1")
            rdy = mgr.wait("READY=1", start=mark, what="READY=1 after the reload")
            assert rel.pid == rdy.pid == d.pid, (rel, rdy, d.pid)
            assert mgr.msgs.index(rel) < mgr.msgs.index(rdy)
            d.wait_line(r"reload: done")
            assert d.proc.poll() is None
            probe(addr)

            # KillMode=mixed: SIGTERM to the main pid alone; it must be
            # gone well within TimeoutStopSec, exit 0.
            stop = seconds(get(svc, "Service", "TimeoutStopSec"))
            d.signal(signal.SIGTERM)
            assert d.wait(stop) == 0, d.log()
            mgr.wait("STOPPING=1", pid=d.pid, start=mark)
