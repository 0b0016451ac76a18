"""readme.py - every example in README.md, run.

Each fenced block of the README follows a marker, <!-- readme-test: NAME -->,
and NAME is a case here: a block without a marker, a marker without a case,
or a case without its block fails the run, so the README cannot grow an
example nobody runs.  The blocks are read from the README, never copied:
what a case replaces is only what an operator would - the installed paths
(/usr/sbin/acceptd, /etc/acceptd/, /usr/local/bin/handler: the build's
acceptd, a temporary directory, a test handler) and `python3` (this
interpreter).  Ports stay as written: the whole script runs in a network
namespace of its own (private_netns), where they are free and where "all
interfaces" is loopback.

What cannot run here is run the way it would run: `systemctl enable --now`
and `systemctl reload` as what they make systemd do - the shipped units'
ListenStream= through systemd-socket-activate, their ExecStart= and
ExecReload= (helpers/unitemu.py); the unit excerpts are checked to be
what the shipped units say.  The TFTP examples run tftpd-hpa's in.tftpd,
unpacked from the .deb tests/fetch-debs.sh fetched, with a temporary
directory for /srv/tftp, and curl as the client.  The migration table is checked too: every
acceptd option it names is one acceptd takes, every config key one a
config file takes."""
import errno
import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "helpers"))
from acceptd_test import (ACCEPTD, Daemon, Skip, case, connect, exchange,  # noqa: E402
                          into_cgroup, pid_dead, private_netns, read_all, run, run_acceptd,
                          scratch_cgroup, tmpdir, wait_counters, wait_port, wait_until,
                          write_script)
import unitemu  # noqa: E402
from inetds import parse_xinetd, run_as, start_openbsd, start_xinetd  # noqa: E402
from tftp import SRV, TFTPD, tftp_fetches, tftp_root  # noqa: E402

TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
README = os.path.join(TOP, "README.md")
HANDLER = "/usr/local/bin/handler"


# --- the README's blocks -------------------------------------------------------

def read_blocks():
    """{name: (lang, text, line)} of every fenced block; a block with no
    marker right before it (blank lines aside) is an error."""
    blocks, marker, lines = {}, None, open(README).read().split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        m = re.fullmatch(r"<!-- readme-test: ([a-z0-9-]+) -->", ln.strip())
        if m:
            marker = (m.group(1), i + 1)
        elif ln.startswith("```"):
            lang, start = ln[3:].strip(), i + 1
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            assert marker, "README.md:%d: a block without a readme-test marker" % start
            assert marker[0] not in blocks, "README.md:%d: marker %s used twice" % marker[::-1]
            blocks[marker[0]] = (lang, "\n".join(body) + "\n", start)
            marker = None
        elif ln.strip() and marker:
            raise AssertionError("README.md:%d: marker %s is not right before a block"
                                 % (marker[1], marker[0]))
        i += 1
    return blocks


BLOCKS = read_blocks()
_used = set()


def block(name):
    assert name in BLOCKS, "README.md has no block marked %s" % name
    _used.add(name)
    return BLOCKS[name][1]


def handler_script():
    """The test's /usr/local/bin/handler: a greeting naming the client as
    the handler sees it, then an echo of what the client sends."""
    d = tmpdir()
    os.chmod(d, 0o755)              # the units run it as an unprivileged uid
    return write_script(d, "handler",
                        '#!/bin/sh\necho "handler: $TCPREMOTEIP $*"\nexec cat\n')


def local_paths(text, handler, etc=None):
    text = text.replace("/usr/sbin/acceptd", ACCEPTD).replace(HANDLER, handler)
    if etc:
        text = text.replace("/etc/acceptd/", etc.rstrip("/") + "/")
    return text


def command(line, handler, etc=None):
    """A README command line as argv, with the local paths."""
    words = shlex.split(local_paths(line, handler, etc))
    if words[0] == "acceptd":
        words[0] = ACCEPTD
    return [sys.executable if w == "python3" else w for w in words]


def greeted(addr, want_ip, payload=b"ping\n"):
    """One connection to the test handler: its greeting and the echo."""
    with connect(addr) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = read_all(s)
    assert out.startswith(b"handler: " + want_ip.encode()), out
    assert out.endswith(payload), out


def config_file(text, etc):
    """Writes a README config block to where its first line, a comment
    naming /etc/acceptd/NAME, says - under etc.  Returns the path."""
    m = re.match(r"# /etc/acceptd/(\S+)\n", text)
    assert m, "a config block starts with '# /etc/acceptd/NAME': %r" % text[:60]
    path = os.path.join(etc, m.group(1))
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


# --- the cases -------------------------------------------------------------------

@case
def readme_every_block_has_a_case():
    names = set(BLOCKS)
    missing = names - CASES
    assert not missing, "README blocks with no case here: %s" % sorted(missing)
    gone = CASES - names
    assert not gone, "cases here whose README block is gone: %s" % sorted(gone)


@case
def standalone_default():
    private_netns()
    argv = command(block("standalone-default").strip(), "")
    assert argv == [ACCEPTD], argv
    d = Daemon([])
    addr, = d.listening()
    assert re.fullmatch(r"\[::\]:8080|0\.0\.0\.0:8080", addr), addr
    assert exchange("127.0.0.1:8080", b"echo\n") == b"echo\n"
    assert d.stop() == 0


@case
def standalone_handler():
    private_netns()
    h = handler_script()
    argv = command(block("standalone-handler").strip(), h)
    d = Daemon(argv[1:])
    d.listening(count=2)
    greeted("127.0.0.1:7000", "127.0.0.1")
    greeted("[::1]:7000", "::1")
    assert d.stop() == 0


@case
def config_file_and_run():
    """The config block, written where it says, run by the command after
    it; then a reload with the file broken keeps serving, as the text
    promises."""
    private_netns()
    h, etc = handler_script(), tmpdir()
    path = config_file(local_paths(block("config-file"), h), etc)
    argv = command(block("config-run").strip(), h, etc)
    assert argv == [ACCEPTD, "--config", path], argv
    d = Daemon(argv[1:])
    d.listening(count=2)
    greeted("127.0.0.1:7000", "127.0.0.1")
    greeted("[::1]:7000", "::1")
    with open(path, "a") as f:
        f.write("backlog = lots\n")
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: %s:\d+: backlog 'lots': not a number; still serving"
                % re.escape(path), start=mark)
    greeted("127.0.0.1:7000", "127.0.0.1")
    assert d.stop() == 0


def excerpt_of(unit_name, excerpt, instance=None):
    """Every KEY=VALUE of a README unit excerpt is what the shipped unit
    says (installed paths as on Debian: /usr/sbin, /etc)."""
    unit = unitemu.parse_unit(unit_name, instance)
    have = {(k, v.replace(unitemu.SBINDIR or "/usr/sbin", "/usr/sbin")
             .replace(unitemu.SYSCONFDIR or "/etc", "/etc"))
            for sec in unit.values() for k, v in sec}
    for ln in excerpt.split("\n"):
        ln = ln.strip()
        if not ln or ln[0] in "#[":
            continue
        k, _, v = ln.partition("=")
        assert (k, v) in have, "README says %s=%s; %s does not" % (k, v, unit_name)


@case
def systemd_socket_unit():
    """acceptd.socket + acceptd.service with the README's config, moved to
    port 7000 by the README's drop-in; `systemctl enable --now` is the
    socket listening, `systemctl reload` is ExecReload."""
    private_netns()
    h, etc = handler_script(), tmpdir()
    os.chmod(etc, 0o755)
    conf = config_file(local_paths(block("systemd-conf"), h), etc)
    cmds = [c.split("#")[0].split() for c in block("systemd-enable").strip().split("\n")]
    assert cmds == [["systemctl", "enable", "--now", "acceptd.socket"],
                    ["systemctl", "reload", "acceptd.service"]], cmds
    dropin = block("systemd-dropin")
    assert dropin.split() == ["[Socket]", "ListenStream=", "ListenStream=7000"], dropin
    # The shipped socket says 8080; the drop-in resets the list and says 7000.
    unitemu.socket_listen(unitemu.parse_unit("acceptd.socket"), "8080")
    unitemu.accept_no_pair("acceptd.socket", "acceptd.service", None, conf,
                           unitemu.conf_path("acceptd.conf"), "8080", port=7000,
                           probe=lambda addr: greeted(addr, "127.0.0.1"))


@case
def template_instance():
    private_netns()
    etc = tmpdir()
    os.chmod(etc, 0o755)
    conf = config_file(block("template-conf"), etc)
    assert os.path.basename(conf) == "7.conf", conf
    cmd = block("template-enable").split()
    assert cmd == ["systemctl", "enable", "--now", "acceptd@7.socket"], cmd
    unitemu.accept_no_pair("acceptd@.socket", "acceptd@.service", "7", conf,
                           unitemu.conf_path("7.conf"), "7", port=7)


@case
def accept_yes_units():
    """The README's excerpt is what the shipped example units say; the
    example itself runs in units.py (accept_yes_example_...): here it
    serves the README's handler through its config."""
    text = block("nowait-units")
    parts = re.split(r"^# (acceptd-nowait\S*)\n", text, flags=re.M)
    assert parts[0].strip() == "" and [parts[1], parts[3]] == [
        "acceptd-nowait.socket", "acceptd-nowait@.service"], parts
    excerpt_of("acceptd-nowait.socket", parts[2])
    excerpt_of("acceptd-nowait@.service", parts[4], "1")


@case
def inetd_lines():
    """Each inetd.conf line under a real OpenBSD inetd: the service (7000,
    or echo = 7 from /etc/services) on 127.0.0.1, which is what the inetd
    needs to bind here."""
    private_netns()
    h = handler_script()
    for line in block("inetd").strip().split("\n"):
        f = local_paths(line, h).split()
        assert len(f) >= 7 and f[1:3] == ["stream", "tcp"], f
        port = int(f[0]) if f[0].isdigit() else socket.getservbyname(f[0], "tcp")
        f[0] = "127.0.0.1:%d" % port
        f[4] = run_as(f[4])
        top = tmpdir()
        with start_openbsd(top, f):      # gone before the next line binds its port
            if h in f:
                greeted("127.0.0.1:%d" % port, "127.0.0.1")
                greeted("127.0.0.1:%d" % port, "127.0.0.1")
            else:
                for word in (b"one\n", b"two\n"):
                    assert exchange("127.0.0.1:%d" % port, word) == word
            assert f[3] in ("wait", "nowait"), f


@case
def xinetd_service():
    """The xinetd service under a real xinetd, bound to 127.0.0.1."""
    private_netns()
    h = handler_script()
    (name, attrs), = parse_xinetd(local_paths(block("xinetd"), h))
    attrs = [(k, op, run_as(v) if k == "user" else v) for k, op, v in attrs]
    attrs.append(("bind", "=", "127.0.0.1"))
    port = int(next(v for k, _, v in attrs if k == "port"))
    s = start_xinetd(tmpdir(), name, attrs, port)
    greeted("127.0.0.1:%d" % port, "127.0.0.1")
    greeted("127.0.0.1:%d" % port, "127.0.0.1")
    # wait = yes: one acceptd served both, and is still there.
    assert len(s.acceptds()) == 1, s.acceptds()


@case
def haproxy_in_front():
    """The README's backend in a real HAProxy, the README's acceptd
    behind it: the handler sees the client's address as HAProxy passes
    it, and a direct connection without a header is closed."""
    private_netns()
    haproxy = shutil_which("haproxy")
    if not haproxy:
        raise Skip("haproxy not installed")
    h, top = handler_script(), tmpdir()
    cfg = os.path.join(top, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n    maxconn 100\n\ndefaults\n    mode tcp\n    timeout connect 5s\n"
                "    timeout client 30s\n    timeout server 30s\n\n"
                "frontend front\n    bind 127.0.0.2:7001\n    default_backend acceptd\n\n"
                + block("haproxy-side"))
    argv = command(" ".join(block("haproxy-acceptd").replace("\\\n", " ").split()), h)
    d = Daemon(argv[1:])
    d.listening()
    hp = Daemon([], argv0=[haproxy, "-db", "-f", cfg])
    wait_port("127.0.0.2", 7001)
    # From 127.0.0.3 through HAProxy: the handler sees 127.0.0.3.
    with socket.create_connection(("127.0.0.2", 7001), timeout=10,
                                  source_address=("127.0.0.3", 0)) as s:
        s.sendall(b"via proxy\n")
        s.shutdown(socket.SHUT_WR)
        out = read_all(s)
    assert out == b"handler: 127.0.0.3 \nvia proxy\n", (out, d.log(), hp.log())
    # Straight to acceptd without a header: closed unanswered (reset,
    # since its bytes were never read), logged.
    try:
        assert exchange("127.0.0.1:7000", b"no header\r\n") == b""
    except OSError as e:    # reset, or not connected any more at shutdown()
        assert e.errno in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE), e
    d.wait_line(r"127\.0\.0\.1:\d+: .*PROXY")
    assert hp.stop() in (0, 143, -15)
    assert d.stop() == 0


def shutil_which(name):
    import shutil
    return shutil.which(name)


@case
def reuseport_instances():
    private_netns()
    lines = [ln.rstrip(" &") for ln in block("reuseport").strip().split("\n")]
    assert len(lines) == 2 and lines[0] == lines[1], lines
    a = Daemon(command(lines[0], "")[1:])
    b = Daemon(command(lines[1], "")[1:])
    a.listening()
    b.listening()
    assert exchange("127.0.0.1:7000", b"one\n") == b"one\n"
    assert a.stop() == 0          # the other goes on serving
    for i in range(20):
        assert exchange("127.0.0.1:7000", b"%d\n" % i) == b"%d\n" % i
    assert b.stop() == 0


@case
def persistent_python_workers():
    private_netns()
    argv = command(block("workers").strip(), "")
    argv = [os.path.join(TOP, w) if w.startswith("contrib/") else w for w in argv]
    d = Daemon(argv[1:])
    d.listening()
    # Until a worker is ready the connection waits in the backlog.
    with connect("127.0.0.1:7000") as s:
        s.sendall(b"hi\n")
        s.shutdown(socket.SHUT_WR)
        out = read_all(s)
    assert re.match(rb"worker \d+: tcp 127\.0\.0\.1 \d+ via \S+, connnum 1\nhi\n$", out), out
    assert d.stop() == 0


@case
def per_client_rules():
    """The README's tcp.smtp, written where its first line says (under a
    temporary directory), served by the README's command with a stand-in
    qmail-smtpd that says what it sees; the addresses the file names are
    added to lo in this test's own network namespace, so each line is
    reached from the address it names: 127.0.0.2 and 2001:db8:42::1
    relay, 192.0.2.13 reads its 554 line and no handler runs, ::1 gets the
    default rule (no RELAYCLIENT, at most 4 connections at once)."""
    private_netns()
    ip = shutil_which("ip") or "/sbin/ip"
    for cmd in (["addr", "add", "192.0.2.13/32", "dev", "lo"],
                ["-6", "addr", "add", "2001:db8:42::1/128", "dev", "lo", "nodad"]):
        r = subprocess.run([ip] + cmd, capture_output=True, timeout=10)
        assert r.returncode == 0 or b"File exists" in r.stderr, r.stderr
    text = block("rules-file")
    m = re.match(r"# (/etc/\S+)\n", text)
    assert m, "the rules block starts with '# /etc/NAME': %r" % text[:40]
    top = tmpdir()
    rules = os.path.join(top, os.path.basename(m.group(1)))
    with open(rules, "w") as f:
        f.write(text)
    smtpd = write_script(top, "qmail-smtpd",
                         '#!/bin/sh\necho "RELAYCLIENT=${RELAYCLIENT-unset} $TCPREMOTEIP"\n'
                         'exec cat\n')
    line = block("rules-run").strip()
    assert "/var/qmail/bin/qmail-smtpd" in line and m.group(1) in line, line
    argv = command(line.replace(m.group(1), rules)
                   .replace("/var/qmail/bin/qmail-smtpd", smtpd), "")
    d = Daemon(argv[1:])
    d.listening()

    def client(src, dst):
        fam = socket.AF_INET6 if ":" in src else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(10)
        s.bind((src, 0))
        s.connect((dst, 25))
        return s

    def first_line(s):
        got = b""
        while not got.endswith(b"\n"):
            b = s.recv(100)
            if not b:
                break
            got += b
        return got

    for src, dst, want in (("127.0.0.2", "127.0.0.1", b"RELAYCLIENT= 127.0.0.2\n"),
                           ("2001:db8:42::1", "::1", b"RELAYCLIENT= 2001:db8:42::1\n"),
                           ("::1", "::1", b"RELAYCLIENT=unset ::1\n")):
        with client(src, dst) as s:
            assert first_line(s) == want, (src, want, d.log())
    with client("192.0.2.13", "127.0.0.1") as s:
        assert read_all(s) == b"554 no mail from you\r\n"
    d.wait_line(r"192\.0\.2\.13:\d+: denied by --rules %s:3; closed" % re.escape(rules))
    # The default's max-per-source="4": a fifth connection at once from
    # ::1 is closed unanswered (once the one before has ended).
    wait_counters(d, active=0)
    held = [client("::1", "::1") for _ in range(4)]
    try:
        for s in held:
            assert first_line(s) == b"RELAYCLIENT=unset ::1\n"
        with client("::1", "::1") as s:
            assert read_all(s) == b""
        d.wait_line(r"::1\]?:\d+: source already holds --max-per-source 4")
    finally:
        for s in held:
            s.close()
    assert d.stop() == 0


# --- datagram services -------------------------------------------------------------

def tftp_paths(text, tftpd, srv):
    assert TFTPD in text and SRV in text, text
    return local_paths(text, "").replace(TFTPD, tftpd).replace(SRV, srv)


@case
def tftp_standalone():
    """The README's acceptd on udp:127.0.0.1:6969 with in.tftpd serving a
    temporary directory: two clients at once get the file intact."""
    private_netns()
    tftpd, srv, data = tftp_root()
    argv = shlex.split(tftp_paths(block("tftp-standalone").strip(), tftpd, srv))
    assert argv[0] == "acceptd", argv
    d = Daemon(argv[1:])
    assert d.listening() == ["udp:127.0.0.1:6969"], d.log()
    tftp_fetches(6969, data)
    # in.tftpd waits 900 s for more requests: the drain (10 s) ends it.
    assert d.stop(timeout=20) == 0, d.log()


@case
def tftp_inetd():
    """The inetd.conf line under a real OpenBSD inetd, its service (tftp,
    69 from /etc/services) on 127.0.0.1."""
    private_netns()
    tftpd, srv, data = tftp_root()
    f = tftp_paths(block("tftp-inetd").strip(), tftpd, srv).split()
    assert f[1:4] == ["dgram", "udp", "wait"], f
    port = socket.getservbyname(f[0], "udp")
    f[0] = "127.0.0.1:%d" % port
    with start_openbsd(tmpdir(), f) as s:
        tftp_fetches(port, data)
        assert len(s.acceptds()) == 1, s.acceptds()


@case
def tftp_xinetd():
    """The xinetd service under a real xinetd, bound to 127.0.0.1."""
    private_netns()
    tftpd, srv, data = tftp_root()
    (name, attrs), = parse_xinetd(tftp_paths(block("tftp-xinetd"), tftpd, srv))
    attrs.append(("bind", "=", "127.0.0.1"))
    port = socket.getservbyname(name, "udp")
    s = start_xinetd(tmpdir(), name, attrs, port)
    tftp_fetches(port, data)
    assert len(s.acceptds()) == 1, s.acceptds()


@case
def tftp_units():
    """The README's excerpt is what the shipped example units say; the
    pair itself runs in units.py (tftp_example_serves_a_file)."""
    text = block("tftp-units")
    parts = re.split(r"^# (acceptd-tftp\S*)\n", text, flags=re.M)
    assert parts[0].strip() == "" and [parts[1], parts[3]] == [
        "acceptd-tftp.socket", "acceptd-tftp.service"], parts
    excerpt_of("acceptd-tftp.socket", parts[2])
    excerpt_of("acceptd-tftp.service", parts[4])


@case
def udp_echo():
    """The built-in echo on TCP and UDP port 7: a datagram comes back
    whole, from the port it was sent to."""
    private_netns()
    argv = command(block("udp-echo").strip(), "")
    d = Daemon(argv[1:])
    assert sorted(d.listening(count=2)) == ["127.0.0.1:7", "udp:127.0.0.1:7"], d.log()
    assert exchange("127.0.0.1:7", b"stream\n") == b"stream\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(10)
        u.sendto(b"datagram", ("127.0.0.1", 7))
        assert u.recvfrom(100) == (b"datagram", ("127.0.0.1", 7))
    assert d.stop() == 0, d.log()


@case
def udp_per_peer():
    """Two peers, each answered by a handler of its own (the pid says
    which), that reads fd 0 as a connected socket."""
    private_netns()
    d = tmpdir()
    os.chmod(d, 0o755)
    handler = write_script(d, "udp-handler", (
        "#!%s\nimport os, socket\n"
        "s = socket.socket(fileno=0)\ns.settimeout(3)\n"
        "try:\n"
        "    while True:\n"
        "        s.send(b'%%d %%s ' %% (os.getpid(), os.environ['UDPREMOTEPORT'].encode())"
        " + s.recv(100))\n"
        "except socket.timeout:\n    pass\n") % sys.executable)
    argv = command(block("udp-per-peer").strip().replace("/usr/local/bin/udp-handler",
                                                         handler), "")
    dmn = Daemon(argv[1:])
    assert dmn.listening() == ["udp:127.0.0.1:5353"], dmn.log()
    peers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        pids = []
        for i, p in enumerate(peers):
            p.settimeout(10)
            p.bind(("127.0.0.%d" % (i + 2), 0))
            p.sendto(b"hello", ("127.0.0.1", 5353))
            pid, port, what = p.recv(100).split()
            assert (port, what) == (str(p.getsockname()[1]).encode(), b"hello"), (port, what)
            pids.append(pid)
        for r in range(3):
            for p in peers:
                p.sendto(b"r%d" % r, ("127.0.0.1", 5353))
            for i, p in enumerate(peers):
                assert p.recv(100).split() == [pids[i], str(p.getsockname()[1]).encode(),
                                               b"r%d" % r]
        assert pids[0] != pids[1], pids
    finally:
        for p in peers:
            p.close()
    assert dmn.stop() == 0, dmn.log()


@case
def untrusted_handlers():
    """The contained handler: run as written (in the namespace, port 7000),
    with a handler that shows what it started with - its limits, nice
    value, umask and user - while acceptd keeps its own."""
    private_netns()
    d = tmpdir()
    os.chmod(d, 0o755)              # the handler runs as nobody
    h = write_script(d, "handler", "#!/bin/sh\nexec cat /proc/self/limits /proc/self/status "
                     "/proc/self/stat\n")
    argv = command(block("untrusted").replace("\\\n", " ").strip(), h)
    dmn = Daemon(argv[1:])
    dmn.listening()
    with connect("127.0.0.1:7000") as s:
        s.shutdown(socket.SHUT_WR)
        out = read_all(s).decode()

    def limit(text, row):
        return re.search(r"^%s\s+(\S+)\s+(\S+)" % row, text, re.M).groups()
    for row, want in (("Max address space", "268435456"), ("Max cpu time", "10"),
                      ("Max open files", "64"), ("Max file size", "1048576"),
                      ("Max core file size", "0")):
        assert limit(out, row) == (want, want), (row, limit(out, row), out)
    assert re.search(r"^Umask:\s+0077$", out, re.M), out
    assert re.search(r"^Uid:\s+%d\s" % pwd.getpwnam("nobody").pw_uid, out, re.M), out
    stat = [ln for ln in out.splitlines() if re.match(r"^\d+ \(", ln)][0]
    assert stat[stat.rindex(")") + 2:].split()[16] == "10", stat       # nice
    with open("/proc/%d/limits" % dmn.pid) as f:
        own = f.read()
    assert limit(own, "Max address space") != ("268435456", "268435456"), own
    assert limit(own, "Max cpu time") == ("unlimited", "unlimited"), own
    assert dmn.stop() == 0


@case
def untrusted_cgroup():
    """--cgroup as written, started in a cgroup of its own (as Delegate=yes
    gives one): the handler runs in conn-N below it, and the setsid'd
    sleeper it leaves behind dies when it exits, its cgroup removed."""
    private_netns()
    cg = scratch_cgroup()
    d = tmpdir()
    os.chmod(d, 0o755)
    left = os.path.join(d, "left")
    h = write_script(d, "handler", "#!/bin/sh\nsed -n 's/^0:://p' /proc/self/cgroup\n"
                     "setsid sh -c 'sleep 600 & echo $! > %s.new; mv %s.new %s; wait' &\n"
                     "while [ ! -e %s ]; do sleep 0.01; done\ncat %s\n"
                     % (left, left, left, left, left))
    argv = command(block("untrusted-cgroup").replace("\\\n", " ").strip(), h)
    dmn = Daemon(argv[1:], preexec_fn=into_cgroup(cg))
    dmn.listening()
    with connect("127.0.0.1:7000") as s:
        s.shutdown(socket.SHUT_WR)
        where, sleeper = read_all(s).decode().split()
    assert re.fullmatch(r".*/%s/conn-\d+" % re.escape(os.path.basename(cg)), where), where
    wait_until(lambda: pid_dead(int(sleeper)), 10, "the setsid'd sleeper killed")
    wait_until(lambda: not [n for n in os.listdir(cg) if n.startswith("conn-")], 10,
               "its cgroup removed")
    with open("/proc/%d/cgroup" % dmn.pid) as f:
        assert f.read().rstrip().endswith("/acceptd"), "acceptd is in its leaf"
    assert dmn.stop() == 0


@case
def untrusted_cgroup_limits():
    """The limits as written: where the memory and pids controllers are
    offered, each handler's cgroup holds the values; where they are not
    (a hybrid-cgroup host), acceptd refuses to start, naming the key."""
    private_netns()
    cg = scratch_cgroup(("memory", "pids"))
    d = tmpdir()
    os.chmod(d, 0o755)
    h = write_script(d, "handler", "#!/bin/sh\n"
                     "m=$(sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \\([^ ]*\\) .* - cgroup2 .*/\\1/p' "
                     "/proc/self/mountinfo | head -n 1)\n"
                     "c=$m$(sed -n 's/^0:://p' /proc/self/cgroup)\n"
                     "cat \"$c/memory.max\" \"$c/pids.max\"\n")
    argv = command(block("untrusted-cgroup-limits").replace("\\\n", " ").strip(), h)
    with open(os.path.join(cg, "cgroup.controllers")) as f:
        offered = f.read().split()
    if "memory" in offered and "pids" in offered:
        dmn = Daemon(argv[1:], preexec_fn=into_cgroup(cg))
        dmn.listening()
        with connect("127.0.0.1:7000") as s:
            s.shutdown(socket.SHUT_WR)
            assert read_all(s).decode().split() == ["268435456", "32"]
        assert dmn.stop() == 0
        return
    rc, _, err = run_acceptd(argv[1:], preexec_fn=into_cgroup(cg))
    missing = "memory" if "memory" not in offered else "pids"
    assert rc == 1, (rc, err)
    assert re.search(r"--cgroup-limit %s\.max: the %s controller is not available in "
                     % (missing, missing), "\n".join(err)), err


# --- the migration table ------------------------------------------------------------

def migration_rows():
    text = open(README).read()
    sec = text.split("## Migrating", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in sec.split("\n") if r.startswith("| ") and not r.startswith("| ---")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows[1:]]


@case
def migration_table_names_real_options_and_keys():
    rc, out, _ = run_acceptd(["--help"])
    assert rc == 0
    longs = set(re.findall(r"--([a-z][a-z-]+)", out))
    shorts = set(re.findall(r"(?:^|\s)-([a-zA-Z]),", out, re.M))
    rows = migration_rows()
    assert len(rows) >= 20, rows
    for row in rows:
        opts, keys = row[1], row[2]
        for o in re.findall(r"`([^`]*)`", opts):
            for w in o.split():
                if w.startswith("--") and len(w) > 2:
                    assert w[2:].split("=")[0] in longs, "README table: %s is no option" % w
                elif re.fullmatch(r"-[a-zA-Z]", w):
                    assert w[1] in shorts, "README table: %s is no option" % w
        for k in re.findall(r"`([a-z-]+)`", keys):
            if k == "exec":
                continue
            assert k in longs, "README table: config key %s is no long option" % k


CASES = {"standalone-default", "standalone-handler", "config-file", "config-run",
         "systemd-conf", "systemd-enable", "systemd-dropin", "template-conf",
         "template-enable", "nowait-units", "haproxy-side", "haproxy-acceptd",
         "reuseport", "workers", "inetd", "xinetd", "rules-file", "rules-run",
         "tftp-standalone", "tftp-inetd", "tftp-xinetd", "tftp-units", "udp-echo",
         "udp-per-peer", "untrusted", "untrusted-cgroup", "untrusted-cgroup-limits"}

run()
