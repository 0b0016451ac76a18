"""inetds.py - real inetds for the tests: OpenBSD inetd (unpacked from the
.deb that tests/fetch-debs.sh fetched when it is not installed: it
conflicts with xinetd as a package) and
xinetd, each in the foreground with one service on 127.0.0.1:PORT, stopped
by pid.  Used by superservers.py (the shipped contrib files) and readme.py
(the README's examples)."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from acceptd_test import ACCEPTD, Daemon, Skip, proc_children, wait_until  # noqa: E402


# --- fetching what is not installed -----------------------------------------

def cache_dir():
    return os.environ.get("ACCEPTD_TEST_CACHE") or os.path.join(
        tempfile.gettempdir(), "acceptd-test-cache")


def cached_dir(name, make):
    """The cache's directory NAME, made once by make(root) in a scratch
    directory and renamed into place whole (atomic: never half made; a
    parallel run's copy is as good as ours)."""
    root = os.path.join(cache_dir(), name)
    if os.path.isdir(root):
        return root
    os.makedirs(cache_dir(), exist_ok=True)
    work = tempfile.mkdtemp(prefix="make-", dir=cache_dir())
    try:
        make(os.path.join(work, "root"))
        try:
            os.rename(os.path.join(work, "root"), root)
        except OSError:
            if not os.path.isdir(root):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root


def debs_dir():
    """Where tests/fetch-debs.sh put the .debs the tests unpack (dev.sh
    fetches them before any test starts: no test touches the network)."""
    return os.environ.get("ACCEPTD_TEST_DEBS") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "build", "debs")


def unpacked_debs(name, packages):
    """The root of PACKAGES' .debs (from debs_dir(), never downloaded
    here) unpacked together under the cache as NAME plus their versions."""
    debs = []
    for p in packages:
        found = sorted(glob.glob(os.path.join(debs_dir(), p + "_*.deb")))
        if not found:
            raise Skip("%s.deb is not in %s: tests/fetch-debs.sh fetches it (tests/dev.sh"
                       " check does, before the tests)" % (p, debs_dir()))
        debs.append(found[-1])
    key = "-".join([name] + [os.path.basename(d)[:-4].split("_", 1)[1] for d in debs])

    def unpack(root):
        for deb in debs:
            x = subprocess.run(["dpkg-deb", "-x", deb, root],
                               capture_output=True, text=True, timeout=30)
            if x.returncode != 0:
                raise AssertionError("dpkg-deb -x %s failed: %s" % (deb, x.stderr.strip()))
    return cached_dir(key, unpack)


def missing_libs(binary):
    if not shutil.which("ldd"):
        return []
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return [ln.split()[0] for ln in r.stdout.splitlines() if "not found" in ln]


def openbsd_inetd():
    if shutil.which("dpkg-query") and os.access("/usr/sbin/inetd", os.X_OK):
        q = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", "openbsd-inetd"],
                           capture_output=True, text=True)
        if q.returncode == 0 and "ok installed" in q.stdout:
            return "/usr/sbin/inetd"
    binary = os.path.join(unpacked_debs("openbsd-inetd", ["openbsd-inetd"]),
                          "usr", "sbin", "inetd")
    missing = missing_libs(binary)
    if missing:
        raise Skip("the downloaded inetd needs libraries not installed: %s"
                   % ", ".join(missing))
    return binary


# --- a superserver serving one shipped service -------------------------------

def tcp_listening(port):
    """True once a socket listens on 127.0.0.1:port.  Read from
    /proc/net/tcp, not probed with a connect: a nowait service would start
    an acceptd for the probe, and the test counts those."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(ln.split()[1] == want and ln.split()[3] == "0A"
                   for ln in f.readlines()[1:])


def udp_bound(port):
    """True once a UDP socket is bound to 127.0.0.1:port (/proc/net/udp:
    a probe datagram would start a handler)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/udp") as f:
        return any(ln.split()[1] == want for ln in f.readlines()[1:])


def wait_listening(port, diag, proto="tcp"):
    ready = udp_bound if proto == "udp" else tcp_listening
    try:
        wait_until(lambda: ready(port), 10, "a %s socket on 127.0.0.1:%d" % (proto, port))
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, diag()))


class Superserver:
    """An inetd or xinetd in the foreground with one service on
    127.0.0.1:port.  exit_rx finds, in log(), its records of children
    that ended (named groups pid and status)."""

    def __init__(self, d, port, exit_rx, log):
        self.d, self.port, self.exit_rx, self.log = d, port, exit_rx, log

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        """Stop it and what it started, each by its pid (d has tree=True,
        so the harness does the same after each case)."""
        return self.d.__exit__(*exc)

    def acceptds(self):
        """The live children it started (each an acceptd)."""
        return sorted(p for p, st in proc_children(self.d.pid) if st not in ("Z", "X"))

    def exits(self):
        """{pid: exit status} of the children it saw end."""
        out = {}
        for m in re.finditer(self.exit_rx, self.log()):
            st = m.group("status")
            out[int(m.group("pid"))] = int(st, 16) if st.startswith("0x") else int(st)
        return out

    def wait_exit(self, pid):
        wait_until(lambda: pid in self.exits(), 10,
                   "the superserver's record of pid %d's exit" % pid)
        return self.exits()[pid]

    def diag(self):
        return "superserver log:\n%s" % self.log()


def start_openbsd(top, fields):
    inetd = openbsd_inetd()
    conf = os.path.join(top, "inetd.conf")
    with open(conf, "w") as f:
        f.write("\t".join(fields) + "\n")
    d = Daemon([conf], argv0=[inetd, "-d"], tree=True)
    s = Superserver(d, int(fields[0].rsplit(":", 1)[1]),
                    r"\b(?P<pid>\d+) reaped, status (?P<status>0x[0-9a-f]+|\d+)", d.log)
    wait_listening(s.port, d.log, fields[2])
    return s


def start_xinetd(top, name, attrs, port):
    xinetd = shutil.which("xinetd")
    if not xinetd:
        raise Skip("xinetd not installed")
    svclog = os.path.join(top, "service.log")
    body = "".join("\t%s %s %s\n" % a for a in attrs)
    conf = os.path.join(top, "xinetd.conf")
    with open(conf, "w") as f:
        f.write("defaults\n{\n\tlog_type = FILE %s\n\tlog_on_success = PID HOST EXIT\n"
                "\tlog_on_failure = HOST\n}\n\nservice %s\n{\n%s}\n" % (svclog, name, body))
    d = Daemon([], argv0=[xinetd, "-dontfork", "-stayalive", "-f", conf,
                          "-pidfile", os.path.join(top, "xinetd.pid"),
                          "-filelog", os.path.join(top, "xinetd.log")], tree=True)

    def log():
        text = []
        for p in (svclog, os.path.join(top, "xinetd.log")):
            try:
                with open(p) as f:
                    text.append(f.read())
            except OSError:
                pass
        return "\n".join(text) + d.log()
    s = Superserver(d, port, r"EXIT: \S+ status=(?P<status>-?\d+) pid=(?P<pid>\d+)", log)
    wait_listening(port, log, next((v for k, _, v in attrs if k == "protocol"), "tcp"))
    return s


def parse_xinetd(text):
    """[(name, [(attribute, operator, value)])] of every service block."""
    out = []
    for m in re.finditer(r"^service[ \t]+(\S+)[ \t]*\n\{\n(.*?)^\}", text, re.M | re.S):
        attrs = []
        for ln in m.group(2).splitlines():
            a = re.match(r"\s*(\w+)\s*(\+=|-=|=)\s*(.*?)\s*$", ln)
            if a:
                attrs.append(a.groups())
        out.append((m.group(1), attrs))
    return out


_users = {}


def run_as(user):
    """user if it can run the build's acceptd (the source tree may sit
    where nobody cannot read it), else root."""
    if user not in _users:
        try:
            r = subprocess.run([ACCEPTD, "-V"], user=user, capture_output=True, timeout=10)
            _users[user] = user if r.returncode == 0 else "root"
        except (OSError, KeyError, subprocess.SubprocessError):
            _users[user] = "root"
    return _users[user]
