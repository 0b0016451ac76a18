"""units.py - the systemd units of units/ as built (paths from configure),
and the configs of contrib/.

  * systemd-analyze verify passes, silently, on every unit (templates
    through an instance, as `systemctl enable acceptd@7.socket` links
    them), with the man pages they cite found; the only change to the
    files is ExecStart's binary, pointed at the build's acceptd (verify
    wants the binary to exist, and sbindir is not installed yet);
  * systemd-analyze security --offline rates every service OK;
  * the settings the units promise are there (Type=notify, KillMode=mixed,
    TimeoutStopSec beyond the default drain, the sandbox, no
    MemoryDenyWriteExecute=) and the paths are the configured ones;
  * each socket+service pair, emulated: systemd-socket-activate takes
    ListenStream= and Accept= from the .socket (on 127.0.0.1, a free
    port), the .service's ExecStart runs with the build's acceptd and a
    config in a temporary directory, as the unprivileged, capability-less,
    no_new_privs process DynamicUser=, CapabilityBoundingSet= and
    NoNewPrivileges= make it (setpriv, when the tests run as root), with a
    NOTIFY_SOCKET (helpers/svcmgr.py).  It must serve echo with the shipped
    acceptd.conf, say READY=1, and ExecReload (with $MAINPID) must reload
    it: RELOADING=1 then READY=1 from the same pid.  The Accept=yes example
    serves one connection per acceptd.  Started without its socket, the
    service's listener goes to the fd store and comes back;
  * the ListenDatagram= example (acceptd-tftp.socket/.service): its
    sandbox, and the pair emulated with systemd-socket-activate --datagram
    and tftpd-hpa's real in.tftpd (unpacked from build/debs) under the
    unit's capability bounding set: curl fetches a file through it, before
    and after ExecReload;
  * under strace, acceptd (pool, handlers, a reload) stays inside
    SystemCallFilter=@system-service and RestrictAddressFamilies=;
  * every example config, and every commented line of the default one,
    is accepted by acceptd.

What cannot be emulated here without a running systemd: the mount and
namespace sandbox itself (ProtectSystem=, PrivateTmp=, ...), which only
systemd applies."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "helpers"))
from acceptd_test import (traced_acceptd, ACCEPTD, Daemon, Skip, case, exchange, free_port,  # noqa: E402
                          proc_children, run, talk, tmpdir, wait_until)
from inetds import unpacked_debs  # noqa: E402
from svcmgr import ServiceManager  # noqa: E402
from unitemu import (SBINDIR, SSA, SYSCONFDIR, UNITDIR, accept_no_pair,  # noqa: E402
                     conf_path, exec_argv, get, need_ssa, parse_unit, sandbox_prefix,
                     seconds, service_argv, socket_listen, ssa_env_args, ssa_ready,
                     unit_path, write_conf)

SRCDIR = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CONF = os.path.join(SRCDIR, "contrib", "acceptd.conf")
EXAMPLES = os.path.join(SRCDIR, "contrib", "examples")
ANALYZE = shutil.which("systemd-analyze")
STRACE = shutil.which("strace")

SERVICES = ("acceptd.service", "acceptd@.service", "acceptd-nowait@.service")
PAIRS = (("acceptd.socket", "acceptd.service"),
         ("acceptd@.socket", "acceptd@.service"),
         ("acceptd-nowait.socket", "acceptd-nowait@.service"))
# The sandbox every service carries, as the units promise it.
HARDENING = {
    "DynamicUser": "yes", "CapabilityBoundingSet": "", "NoNewPrivileges": "yes",
    "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes", "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
}
FAMILIES = set(HARDENING["RestrictAddressFamilies"].split())
DEFAULT_DRAIN = 10          # acceptd's --drain default
KILL_GRACE = 5              # its SIGTERM -> SIGKILL step for handlers


# --- systemd-analyze -----------------------------------------------------------

def analyze_tree():
    """A directory with every built unit, ExecStart's binary pointed at the
    build's acceptd, instances linked to their templates as systemctl
    enable does, and a MANPATH that finds acceptd's own pages (the
    trailing colon keeps the system's, for systemd.socket(5))."""
    d = tmpdir()
    names = sorted(os.listdir(UNITDIR))
    assert {"acceptd.socket", "acceptd.service", "acceptd@.socket", "acceptd@.service",
            "acceptd-nowait.socket", "acceptd-nowait@.service", "acceptd-tftp.socket",
            "acceptd-tftp.service"} <= set(names), names
    installed = os.path.join(SBINDIR, "acceptd") if SBINDIR else None
    for n in names:
        with open(os.path.join(UNITDIR, n)) as f:
            text = f.read()
        if installed:
            text = re.sub(r"^(Exec\w+=)%s(\s)" % re.escape(installed),
                          lambda m: m.group(1) + ACCEPTD + m.group(2), text, flags=re.M)
        with open(os.path.join(d, n), "w") as f:
            f.write(text)
    links = {"acceptd@7.socket": "acceptd@.socket", "acceptd@7.service": "acceptd@.service",
             "acceptd-nowait@1.service": "acceptd-nowait@.service"}
    for link, target in links.items():
        os.symlink(target, os.path.join(d, link))
    verify = ["acceptd.socket", "acceptd.service", "acceptd@7.socket", "acceptd@7.service",
              "acceptd-nowait.socket", "acceptd-nowait@1.service", "acceptd-tftp.socket",
              "acceptd-tftp.service"]
    man = os.path.join(d, "man")
    for page in os.listdir(os.path.join(SRCDIR, "man")):
        m = re.fullmatch(r".+\.(\d)", page)
        if m:
            os.makedirs(os.path.join(man, "man" + m.group(1)), exist_ok=True)
            os.symlink(os.path.join(SRCDIR, "man", page),
                       os.path.join(man, "man" + m.group(1), page))
    return d, verify, man


def analyze(args, cwd, man=None, timeout=30):
    env = dict(os.environ)
    if man:
        env["MANPATH"] = man + ":"
    r = subprocess.run([ANALYZE] + args, cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).strip()


def man_check(man):
    """--man=yes when every man: page the units cite can be found: ours in
    the source tree (they must be), the others (systemd's) on this system;
    a system without them (man pages excluded from a container image)
    gets --man=no, said in the output."""
    pages = set()
    for n in os.listdir(UNITDIR):
        for k, v in parse_unit(n).get("Unit", []):
            if k == "Documentation":
                pages |= set(re.findall(r"man:([\w.@-]+)\((\d)\)", v))
    ours = {(p[:-2], p[-1]) for p in os.listdir(os.path.join(SRCDIR, "man"))
            if re.fullmatch(r".+\.\d", p)}
    assert {("acceptd", "8")} <= pages, pages
    missing = [p for p in pages if p[0].startswith("acceptd") and p not in ours]
    assert not missing, "the units cite man pages acceptd does not have: %s" % missing
    if not shutil.which("man"):
        print("# man(1) not installed: verify --man=no", flush=True)
        return "--man=no"
    for name, sec in sorted(pages - ours):
        r = subprocess.run(["man", "-w", sec, name], capture_output=True, timeout=30,
                           env=dict(os.environ, MANPATH=man + ":"))
        if r.returncode != 0:
            print("# %s(%s) not on this system: verify --man=no" % (name, sec), flush=True)
            return "--man=no"
    return "--man=yes"


def need_analyze():
    if not ANALYZE:
        raise Skip("systemd-analyze not installed (package systemd)")


@case
def systemd_analyze_verify_every_unit():
    need_analyze()
    d, units, man = analyze_tree()
    man_opt = man_check(man)
    rc, out = analyze(["verify", man_opt] + ["./" + u for u in units], d, man)
    print("# systemd-analyze verify %s %s: status %d%s"
          % (man_opt, " ".join(units), rc, (", output:\n" + out) if out else ", no output"),
          flush=True)
    # Warnings (an unknown key, a bad value) do not change the status:
    # any output at all is a failure.
    assert rc == 0 and out == "", out
    # The harness does see problems: a bad copy must be reported.
    with open(os.path.join(d, "acceptd.service")) as f:
        text = f.read()
    with open(os.path.join(d, "broken.service"), "w") as f:
        f.write(text.replace("KillMode=mixed", "KillMode=mixed\nNoSuchKey=1"))
    rc, out = analyze(["verify", man_opt, "./broken.service"], d, man)
    assert "NoSuchKey" in out, (rc, out)


@case
def systemd_analyze_security_rates_every_service_ok():
    need_analyze()
    d, _, _ = analyze_tree()
    svcs = ["acceptd.service", "acceptd@7.service", "acceptd-nowait@1.service",
            "acceptd-tftp.service"]
    rc, out = analyze(["security", "--offline=yes", "--no-pager"] + ["./" + s for s in svcs], d)
    if "--offline" in out and "nrecognized" in out:
        raise Skip("systemd-analyze security has no --offline here")
    levels = dict(re.findall(r"Overall exposure level for (\S+): (\d+\.\d+)", out))
    assert set(levels) == set(svcs), out
    print("# exposure: %s" % ", ".join("%s %s" % kv for kv in sorted(levels.items())),
          flush=True)
    # systemd's scale: 0 (safe) to 10; "OK" is below 5.  The units score
    # about 1.7: a lost block of hardening shows here.
    # The tftp example runs as root (in.tftpd chroots and setuids itself),
    # with a bounding set of three capabilities: rated 2.5 by systemd 252.
    bad = {s: v for s, v in levels.items()
           if float(v) > (3.0 if s == "acceptd-tftp.service" else 2.5)}
    assert not bad, "exposure above 2.5: %s\n%s" % (bad, out)


# --- what the units say ---------------------------------------------------------

@case
def units_use_the_configured_paths():
    if not (SBINDIR and SYSCONFDIR):
        raise Skip("ACCEPTD_SBINDIR/ACCEPTD_SYSCONFDIR not set (run through make check)")
    for name in os.listdir(UNITDIR):
        with open(unit_path(name)) as f:
            text = f.read()
        left = re.findall(r"@[A-Za-z_]+@", text)
        assert not left, "%s: unsubstituted %s" % (name, left)
    want = {"acceptd.service": conf_path("acceptd.conf"),
            "acceptd@.service": conf_path("%i.conf"),
            "acceptd-nowait@.service": conf_path("acceptd.conf")}
    for name, conf in want.items():
        argv = exec_argv(get(parse_unit(name), "Service", "ExecStart"))
        assert argv == [os.path.join(SBINDIR, "acceptd"), "--config", conf], (name, argv)


@case
def services_promise_what_they_say():
    for name in SERVICES:
        u = parse_unit(name)
        s = dict(u["Service"])
        assert get(u, "Service", "Type") == "notify", name
        assert get(u, "Service", "KillMode") == "mixed", name
        assert seconds(get(u, "Service", "TimeoutStopSec", "0")) > DEFAULT_DRAIN + KILL_GRACE, name
        assert "MemoryDenyWriteExecute" not in s, "%s: MemoryDenyWriteExecute breaks JITs" % name
        for key, want in HARDENING.items():
            assert get(u, "Service", key) == want, "%s: %s=%r, want %r" % (
                name, key, get(u, "Service", key), want)
        # DynamicUser= and a config's user = (needs root) do not combine:
        # no unit may ask for root-only ids on top.
        assert "User" not in s and "Group" not in s, name
    for name in ("acceptd.service", "acceptd@.service"):
        u = parse_unit(name)
        assert get(u, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID", name
        assert get(u, "Service", "Restart") == "on-failure", name
        assert get(u, "Service", "RestartPreventExitStatus") == "2", name
        assert int(get(u, "Service", "FileDescriptorStoreMax", "0")) > 0, name
    # One connection per instance: nothing to reload or restart.
    u = parse_unit("acceptd-nowait@.service")
    for key in ("ExecReload", "Restart", "FileDescriptorStoreMax", "RuntimeDirectory"):
        assert get(u, "Service", key) is None, key
    # The default port is the one acceptd binds alone; the template's is
    # its instance name.
    assert socket_listen(parse_unit("acceptd.socket"), "8080") is False
    assert socket_listen(parse_unit("acceptd@.socket", "7"), "7") is False
    assert socket_listen(parse_unit("acceptd-nowait.socket"), "7000") is True


TFTP_CAPS = "CAP_SYS_CHROOT CAP_SETUID CAP_SETGID"


@case
def tftp_example_promises_what_it_says():
    """The ListenDatagram= example: a datagram socket on 69, Accept=no;
    acceptd running in.tftpd; the sandbox of the other services, but root
    with a bounding set of what in.tftpd needs (it refuses to run as
    anyone else) and chroot allowed."""
    sock = parse_unit("acceptd-tftp.socket")
    assert [v for k, v in sock["Socket"] if k.startswith("Listen")] == ["69"], sock
    assert get(sock, "Socket", "ListenDatagram") == "69", sock
    assert get(sock, "Socket", "Accept", "no") == "no", sock
    u = parse_unit("acceptd-tftp.service")
    argv = exec_argv(get(u, "Service", "ExecStart"))
    if SBINDIR:
        assert argv[0] == os.path.join(SBINDIR, "acceptd"), argv
    assert argv[1:] == ["--", "/usr/sbin/in.tftpd", "-s", "/srv/tftp"], argv
    assert get(u, "Service", "Type") == "notify"
    assert get(u, "Service", "KillMode") == "mixed"
    assert get(u, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert seconds(get(u, "Service", "TimeoutStopSec", "0")) > DEFAULT_DRAIN + KILL_GRACE
    want = dict(HARDENING, CapabilityBoundingSet=TFTP_CAPS,
                SystemCallFilter="@system-service chroot")
    del want["DynamicUser"]
    for key, val in want.items():
        assert get(u, "Service", key) == val, "acceptd-tftp.service: %s=%r, want %r" % (
            key, get(u, "Service", key), val)
    s = dict(u["Service"])
    assert "DynamicUser" not in s and "User" not in s, "in.tftpd must start as root"


def tftp_fetch(port, name, want):
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "-",
                        "tftp://127.0.0.1:%d/%s" % (port, name)],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == want, "curl: status %d, %d bytes of %d: %s" % (
        r.returncode, len(r.stdout), len(want), r.stderr.decode(errors="replace"))


def need_tftp():
    """in.tftpd from the tftpd-hpa .deb, and a curl that speaks tftp."""
    if os.geteuid() != 0:
        raise Skip("in.tftpd runs only as root (it chroots and drops to its user)")
    if not shutil.which("curl") or "tftp" not in subprocess.run(
            ["curl", "-V"], capture_output=True, text=True).stdout:
        raise Skip("curl with tftp not installed")
    return os.path.join(unpacked_debs("tftpd", ["tftpd-hpa"]), "usr", "sbin", "in.tftpd")


@case
def tftp_example_serves_a_file():
    """acceptd-tftp.socket + .service: ListenDatagram= through
    systemd-socket-activate --datagram on 127.0.0.1, ExecStart with the
    build's acceptd and tftpd-hpa's in.tftpd serving a temporary
    directory in place of /srv/tftp, under the unit's bounding set and
    no_new_privs (setpriv).  curl fetches a 3 MB file intact; READY=1;
    ExecReload reloads in place and a second fetch works; SIGTERM stops
    it (the lingering in.tftpd ended by the drain) within TimeoutStopSec."""
    need_ssa()
    tftpd = need_tftp()
    svc = parse_unit("acceptd-tftp.service")
    argv = exec_argv(get(svc, "Service", "ExecStart"))
    srv = tmpdir()
    os.chmod(srv, 0o755)
    data = os.urandom(3 << 20)
    with open(os.path.join(srv, "boot.img"), "wb") as f:
        f.write(data)
    os.chmod(os.path.join(srv, "boot.img"), 0o644)
    argv = [ACCEPTD] + [tftpd if a == "/usr/sbin/in.tftpd" else srv if a == "/srv/tftp" else a
                        for a in argv[1:]]
    caps = ",".join("+" + c[4:].lower() for c in TFTP_CAPS.split())
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--bounding-set=-all," + caps, "--no-new-privs"] if setpriv else []
    port = free_port()
    with ServiceManager() as mgr:
        with Daemon(argv[1:], argv0=[SSA, "--datagram", "-l", "127.0.0.1:%d" % port] +
                    ssa_env_args(mgr) + ["--"] + prefix + [argv[0]], tree=True) as d:
            d.wait_line(r"Listening on 127\.0\.0\.1:%d as 3\." % port)
            tftp_fetch(port, "boot.img", data)
            mgr.wait("READY=1", pid=d.pid, what="READY=1 from the service")
            mark = mgr.mark()
            r = subprocess.run(exec_argv(get(svc, "Service", "ExecReload"), mainpid=d.pid),
                               timeout=10, capture_output=True)
            assert r.returncode == 0, r
            mgr.wait("READY=1", pid=d.pid, start=mark, what="READY=1 after the reload")
            d.wait_line(r"reload: done")
            tftp_fetch(port, "boot.img", data)
            d.signal(signal.SIGTERM)
            assert d.wait(seconds(get(svc, "Service", "TimeoutStopSec"))) == 0, d.log()


# --- the pairs, emulated ------------------------------------------------------

@case
def acceptd_socket_and_service_serve_the_default_config():
    conf = write_conf(open(DEFAULT_CONF).read())
    accept_no_pair("acceptd.socket", "acceptd.service", None, conf,
                   conf_path("acceptd.conf"), "8080")


@case
def template_instance_is_the_port():
    port = free_port()
    conf = write_conf("builtin = echo\nmax-per-ip = 20\n", "%d.conf" % port)
    accept_no_pair("acceptd@.socket", "acceptd@.service", str(port), conf,
                   conf_path("%d.conf" % port), str(port))


@case
def accept_yes_example_one_acceptd_per_connection():
    need_ssa()
    sock = parse_unit("acceptd-nowait.socket")
    svc = parse_unit("acceptd-nowait@.service", "1")
    assert socket_listen(sock, "7000"), "acceptd-nowait.socket: not Accept=yes"
    conf = write_conf(open(DEFAULT_CONF).read())
    argv = service_argv(svc, conf, conf_path("acceptd.conf"))
    port = free_port()
    with ServiceManager() as mgr:
        with Daemon(argv[1:], argv0=[SSA, "-a", "-l", "127.0.0.1:%d" % port] +
                    ssa_env_args(mgr) + ["--"] + sandbox_prefix(conf) + [argv[0]],
                    tree=True) as d:
            ssa_ready(d, port)
            # Two at once: each gets an acceptd of its own.
            a = socket.create_connection(("127.0.0.1", port), timeout=10)
            b = socket.create_connection(("127.0.0.1", port), timeout=10)
            with a, b:
                for s, word in ((a, b"ay\n"), (b, b"bee\n")):
                    s.sendall(word)
                    got = b""
                    while len(got) < len(word):
                        chunk = s.recv(64)
                        assert chunk, "connection closed early; log:\n" + d.log()
                        got += chunk
                    assert got == word, got
                def ready_pids():
                    pids = {m.pid for m in mgr.messages() if m.text == "READY=1"}
                    return pids if len(pids) >= 2 else None
                pids = wait_until(ready_pids, 10, "READY=1 from two acceptds")
                assert len(pids) == 2 and d.pid not in pids, (pids, d.pid)
                for s in (a, b):
                    s.shutdown(socket.SHUT_WR)
                    assert s.recv(1) == b""
            # Each instance exits 0 once its connection is done.
            for pid in pids:
                m = d.wait_line(r"Child %d died with code (\d+)" % pid)
                assert m.group(1) == "0", d.log()
            spawned = {int(p) for p in re.findall(r"Spawned .* as PID (\d+)\.", d.log())}
            assert spawned == pids, (spawned, pids, d.log())
            # And a third connection: a third instance.
            _, out = talk(("127.0.0.1", port), b"third\n")
            assert out == b"third\n", d.log()


@case
def service_alone_binds_and_keeps_its_listener_in_the_fd_store():
    """Without its socket the service binds the config's listen = itself;
    FileDescriptorStoreMax= lets the listener outlive a restart.  systemd
    252 keeps the fds but does not set $FDSTORE (fdstore=None)."""
    svc = parse_unit("acceptd.service")
    assert int(get(svc, "Service", "FileDescriptorStoreMax")) > 0
    conf = write_conf("builtin = echo\nlisten = 127.0.0.1:0\n")
    argv = service_argv(svc, conf, conf_path("acceptd.conf"))
    with ServiceManager() as mgr:
        d = mgr.start(argv[1:], fdstore=None, argv0=[argv[0]])
        addr, = d.listening()
        mgr.ready(d)
        assert list(mgr.stored()) == ["acceptd-own-" + addr.replace(":", "_")], mgr.stored()
        assert d.stop() == 0
        # Restart=: the next one takes the port back from the store.
        d = mgr.start(argv[1:], fdstore=None, argv0=[argv[0]])
        d.wait_line(r"listening on %s \(from the fd store\)$" % re.escape(addr))
        mgr.ready(d, start=0)
        assert exchange(addr, b"kept\n") == b"kept\n", d.log()
        assert d.stop() == 0


# --- the sandbox's system call filter and address families ---------------------

def filter_set(name, seen=None):
    """The system calls of a systemd-analyze syscall-filter group, nested
    groups expanded."""
    seen = set() if seen is None else seen
    out = subprocess.run([ANALYZE, "syscall-filter", name], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        w = line.strip()
        if not w or w.startswith("#"):
            continue
        if w.startswith("@"):
            if w not in seen:
                seen.add(w)
                calls |= filter_set(w, seen)
        else:
            calls.add(w)
    return calls


def is_asan_build():
    with open(ACCEPTD, "rb") as f:
        return b"__asan_init" in f.read()


@case
def syscalls_and_address_families_fit_the_sandbox():
    need_analyze()
    if not STRACE:
        raise Skip("strace not installed")
    if is_asan_build():
        raise Skip("an ASan build: the sanitizer's own system calls are not acceptd's")
    allowed = filter_set(HARDENING["SystemCallFilter"])
    trace = os.path.join(tmpdir(), "trace")
    conf = write_conf("builtin = echo\nworkers = 2\nlisten = 127.0.0.1:0\n")
    handler_conf = write_conf("exec = /bin/cat\nlisten = 127.0.0.1:0\n", "handler.conf")
    with ServiceManager() as mgr:
        for c in (conf, handler_conf):
            d = mgr.start(["--config", c], fdstore=None, use_store=False,
                          argv0=[STRACE, "-f", "-qq", "-o", trace + "." + os.path.basename(c),
                                 ACCEPTD])
            addr, = d.listening()
            pid = wait_until(lambda: traced_acceptd(d.pid), 10, "acceptd under strace")
            mgr.wait("READY=1", pid=pid)
            assert exchange(addr, b"one\n") == b"one\n", d.log()
            mark = mgr.mark()
            os.kill(pid, signal.SIGHUP)
            mgr.wait(lambda m: m.text.startswith("RELOADING=1"), pid=pid, start=mark)
            mgr.wait("READY=1", pid=pid, start=mark)
            d.wait_line(r"reload: done")
            assert exchange(addr, b"two\n") == b"two\n", d.log()
            os.kill(pid, signal.SIGTERM)
            assert d.wait(20) == 0, d.log()
    used, families = set(), set()
    for c in (conf, handler_conf):
        with open(trace + "." + os.path.basename(c)) as f:
            for line in f:
                m = re.match(r"\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
                if m:
                    used.add(m.group(1))
                families.update(re.findall(r"\bsocket(?:pair)?\((AF_\w+)", line))
    outside = sorted(used - allowed)
    print("# %d system calls used, %d allowed by @system-service; families %s"
          % (len(used), len(allowed), " ".join(sorted(families))), flush=True)
    assert not outside, "outside @system-service: %s" % outside
    assert families <= FAMILIES, "address families beyond the unit's: %s" % (families - FAMILIES)


# --- the configs -------------------------------------------------------------

def refused_or_reply(addr, payload):
    """The reply to payload, b"" when acceptd closed (or reset) it."""
    try:
        return exchange(addr, payload)
    except ConnectionResetError:
        return b""


def accepted(text, payload=b"x", want=None):
    """acceptd starts with a config of text, where the examples'
    /usr/local/bin/handler becomes /bin/echo (so its arguments come back
    as the reply, as exec = split them); the listeners are replaced from
    the command line.  It serves payload with want (unless payload is
    None), and stops cleanly."""
    text = text.replace("/usr/local/bin/handler", "/bin/echo")
    d = Daemon(["--config", write_conf(text), "-l", "127.0.0.1:0"])
    addr, = d.listening()
    if payload is not None:
        assert refused_or_reply(addr, payload) == want, d.log()
    assert d.stop() == 0, d.log()


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


@case
def example_configs_are_accepted():
    names = sorted(n for n in os.listdir(EXAMPLES) if n.endswith(".conf"))
    assert {"handler-limits.conf", "haproxy.conf"} <= set(names), names
    for n in set(names) - {"handler-limits.conf", "haproxy.conf"}:
        accepted(example(n), payload=None)
    accepted(example("handler-limits.conf"), b"", b"--greeting hello there\n")
    # Behind HAProxy: a PROXY header first; the client address it carries
    # is what the example's deny = 192.0.2.0/24 sees.
    accepted(example("haproxy.conf"),
             b"PROXY TCP4 198.51.100.7 127.0.0.1 5000 7000\r\n", b"\n")
    accepted(example("haproxy.conf"),
             b"PROXY TCP4 192.0.2.7 127.0.0.1 5000 7000\r\n", b"")


def default_conf_uncommented(drop):
    """acceptd.conf with every commented KEY = VALUE line made live, but
    for the keys in drop (user = needs root)."""
    drop = set(drop) | ({"user"} if os.geteuid() != 0 else set())
    keep = []
    with open(DEFAULT_CONF) as f:
        for line in f:
            m = re.match(r"#?([a-z-]+) = ", line)
            if m:
                if m.group(1) in drop:
                    continue
                line = line.lstrip("#")
            keep.append(line)
    return "".join(keep)


@case
def default_config_serves_echo():
    with open(DEFAULT_CONF) as f:
        accepted(f.read(), b"hello\n", b"hello\n")


@case
def default_config_every_commented_line_is_valid():
    """Uncommenting any example line of acceptd.conf must give a working
    file: once as a program (the builtin and its workers dropped, as the
    file says), once as the built-in (exec dropped).  deny = all is among
    them, so no client is served."""
    text = default_conf_uncommented({"builtin", "workers"})
    assert "\nexec = /usr/local/bin/handler" in text, text
    accepted(text, payload=None)
    text = default_conf_uncommented({"exec"})
    assert "\nbuiltin = echo\n" in text and "\nworkers = " in text, text
    accepted(text, payload=None)


run()
