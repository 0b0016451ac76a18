"""acceptd_test - shared helpers for the integration tests.

Every test runs the real acceptd binary ($ACCEPTD) against real sockets on
loopback or unix sockets only, and speaks TAP so automake's tap-driver
counts each case.  Rules kept here so each test file need not repeat them:

  * readiness is read from acceptd's own log ("listening on ADDR"), never
    guessed with a sleep;
  * every process a test starts is stopped by its pid, with a bounded wait
    and SIGKILL as the last resort;
  * every test case runs under an alarm, so a hang fails instead of
    blocking the suite.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ACCEPTD = os.environ.get("ACCEPTD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "src", "acceptd")
CASE_TIMEOUT = int(os.environ.get("ACCEPTD_CASE_TIMEOUT", "60"))

_cases = []


class Skip(Exception):
    """Raise from a test case to report it as skipped, with the reason."""


def case(fn):
    """Decorator: register a test case, run in the order defined."""
    _cases.append(fn)
    return fn


class _Timeout(Exception):
    pass


def _alarm(_sig, _frame):
    raise _Timeout("test case exceeded %d s" % CASE_TIMEOUT)


def run():
    """Run every registered case, print TAP, exit 0 (the driver counts)."""
    signal.signal(signal.SIGALRM, _alarm)
    only = os.environ.get("ACCEPTD_CASES")     # a debugging aid: name,name...
    if only:
        _cases[:] = [fn for fn in _cases if fn.__name__ in only.split(",")]
    print("1..%d" % len(_cases), flush=True)
    passed = failed = skipped = 0
    for i, fn in enumerate(_cases, 1):
        name = fn.__name__
        signal.alarm(CASE_TIMEOUT)
        try:
            fn()
            passed += 1
            print("ok %d - %s" % (i, name), flush=True)
        except Skip as e:
            if skip_allowed(name):
                skipped += 1
                print("ok %d - %s # SKIP %s" % (i, name, e), flush=True)
            else:
                failed += 1
                print("not ok %d - %s (skipped, and a skip fails under CI=true unless"
                      " tests/skips-allowed lists it: %s)" % (i, name, e), flush=True)
        except BaseException:  # noqa: B902 - a case must never kill the run
            failed += 1
            print("not ok %d - %s" % (i, name), flush=True)
            for line in traceback.format_exc().splitlines():
                print("# " + line, flush=True)
        finally:
            signal.alarm(0)
            Daemon.stop_all()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    _remove_cgroups()
    # A TAP comment for runners without a TAP driver (tests/dev.sh's
    # stages, the system tier): the same counts as the lines above.
    print("# %s: %d passed, %d failed, %d skipped"
          % (os.path.basename(sys.argv[0]), passed, failed, skipped), flush=True)
    sys.exit(0)


SKIPS_ALLOWED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "skips-allowed")


def skip_allowed(name, script=None):
    """May case `name` of this test file skip?  Always outside CI; under
    CI=true (or ACCEPTD_STRICT_SKIPS=1) only when tests/skips-allowed lists
    it, so a missing tool or privilege cannot turn a run green by testing
    less."""
    if os.environ.get("CI") != "true" and os.environ.get("ACCEPTD_STRICT_SKIPS") != "1":
        return True
    script = script or os.path.basename(sys.argv[0])
    try:
        with open(SKIPS_ALLOWED) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) != 3 or words[:2] != [script, name]:
            continue
        if words[2] == "always" or (words[2] == "asan" and sanitized()):
            return True
    return False


class Daemon:
    """One acceptd process.  Its stderr is collected line by line.

    run() stops every Daemon still running after each case, so a case
    need not.  Where one must be gone before the case goes on (its port
    is used again, something it talks to is closed next), `with
    Daemon(...) as d:` stops it at the end of the block, also when the
    block fails; exceptions go on up."""

    live = []

    def __init__(self, args, env=None, stdin=None, pass_fds=(), extra_env=None,
                 argv0=None, preexec_fn=None, cwd=None, tree=False):
        e = dict(os.environ if env is None else env)
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
                  "JOURNAL_STREAM"):
            if env is None:
                e.pop(k, None)
        e.update(extra_env or {})
        cmd = list(argv0 or [ACCEPTD]) + list(args)
        self.lines = []
        self.cond = threading.Condition()
        # A process that starts others of its own (an inetd,
        # systemd-socket-activate -a): stopped with stop_tree, by the
        # harness after each case and at the end of a with block.
        self.tree = tree
        self.proc = subprocess.Popen(
            cmd, env=e, stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=pass_fds,
            preexec_fn=preexec_fn, cwd=cwd)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        Daemon.live.append(self)

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=10, start=0):
        """Return the first re.Match of pattern in a log line (from index
        start on), waiting for it; AssertionError on timeout or exit."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError("no log line /%s/ within %ss; log:\n%s"
                                         % (pattern, timeout, self.log()))
                self.cond.wait(min(left, 0.2))

    def listening(self, count=1, timeout=10):
        """Wait for `count` "listening on ADDR" lines and return the ADDRs."""
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                found = [m.group(1) for m in
                         (re.search(r"listening on (\S+)", ln) for ln in self.lines) if m]
            if len(found) >= count:
                # READY follows the listeners; "started" is logged after them.
                self.wait_line(r"started acceptd", timeout=max(1, deadline - time.monotonic()))
                return found
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("acceptd did not listen; log:\n" + self.log())
            time.sleep(0.02)

    def log(self):
        with self.cond:
            return "\n".join(self.lines)

    def wait(self, timeout=10):
        """Wait for exit and return the status; fails the test on timeout."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("acceptd pid %d still running after %ss; log:\n%s"
                                 % (self.pid, timeout, self.log()))
        self._reader.join(5)
        return rc

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, timeout=10):
        """SIGTERM by pid, wait; SIGKILL if it does not go.  Returns status."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._reader.join(5)
        if self in Daemon.live:
            Daemon.live.remove(self)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tree:
            stop_tree(self)
        else:
            self.stop()
        return False

    @classmethod
    def stop_all(cls):
        for d in list(cls.live):
            try:
                if d.tree:
                    stop_tree(d, timeout=5)
                else:
                    d.stop(timeout=5)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass


def parse_addr(addr):
    """'127.0.0.1:80' / '[::1]:80' / 'unix:/p' -> (family, sockaddr)."""
    if addr.startswith("unix:"):
        return socket.AF_UNIX, addr[5:]
    if addr.startswith("["):
        host, port = addr[1:].rsplit("]:", 1)
        return socket.AF_INET6, (host, int(port))
    host, port = addr.rsplit(":", 1)
    return socket.AF_INET, (host, int(port))


def loopback_of(addr, family=None):
    """A listener's address as a client should dial it: wildcards become
    the loopback address of the wanted family."""
    fam, sa = parse_addr(addr)
    if fam == socket.AF_UNIX:
        return fam, sa
    host, port = sa
    if family is None:
        family = fam
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if family == socket.AF_INET else "::1"
    return family, (host, port)


def connect(addr, family=None, timeout=10):
    fam, sa = loopback_of(addr, family) if isinstance(addr, str) else addr
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sa)
    return s


def read_all(sock, limit=1 << 20):
    out = b""
    while len(out) < limit:
        b = sock.recv(65536)
        if not b:
            break
        out += b
    return out


def exchange(addr, data=b"", family=None, timeout=10):
    """Connect, send data, half-close, read to EOF."""
    with connect(addr, family, timeout) as s:
        if data:
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return read_all(s)


def free_port(family=socket.AF_INET):
    """A port that was free a moment ago, for tools that cannot take 0."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=10, family=socket.AF_INET):
    """Poll until a TCP connect to host:port succeeds (for foreign daemons
    with no readiness signal of their own)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect((host, port))
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("nothing listens on %s:%d" % (host, port))
            time.sleep(0.02)


_tmpdirs = []
_cgroups = []


def cgroup2_mount():
    """Where the cgroup2 file system is mounted (a hybrid host:
    /sys/fs/cgroup/unified), from /proc/self/mountinfo; None if nowhere."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split(" ", 1)[0] == "cgroup2":
                return pre.split()[4].replace("\\040", " ")
    return None


def scratch_cgroup(controllers=()):
    """A new cgroup v2 directory for one case, with these controllers
    offered to it where its parent has them, as a delegated one would be;
    killed and removed when the test file ends.  Skip where none can be
    made (no cgroup2, not root)."""
    mnt = cgroup2_mount()
    if not mnt:
        raise Skip("no cgroup2 mounted")
    top = os.path.join(mnt, "acceptd-test-%d" % os.getpid())
    try:
        os.makedirs(top, exist_ok=True)
        for c in controllers:
            for d in (mnt, top):
                with open(os.path.join(d, "cgroup.controllers")) as f:
                    if c in f.read().split():
                        with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                            f.write("+" + c)
        path = tempfile.mkdtemp(prefix="case-", dir=top)
    except OSError as e:
        raise Skip("cannot make a cgroup under %s: %s" % (mnt, e))
    if top not in _cgroups:
        _cgroups.append(top)
    return path


def into_cgroup(path):
    """A preexec_fn that moves the new process - only it, never the test -
    into the cgroup at path before it executes."""
    def move():
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write("0")
    return move


def _remove_cgroups():
    """Deepest first: kill what is left (cgroup.kill), wait for it to be
    empty (bounded), remove."""
    for top in _cgroups:
        dirs = [d for d, _, _ in os.walk(top)]
        for d in sorted(dirs, key=len, reverse=True):
            try:
                with open(os.path.join(d, "cgroup.kill"), "w") as f:
                    f.write("1")
            except OSError:
                pass
            deadline = time.monotonic() + 10
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        print("# cannot remove cgroup %s" % d, flush=True)
                        break
                    time.sleep(0.02)


def tmpdir():
    """A fresh directory, removed when the test file ends."""
    d = tempfile.mkdtemp(prefix="acceptd-test-")
    _tmpdirs.append(d)
    return d


def has_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- process and polling helpers (standalone, handler_env, limits, errors) --

_netns_done = False


def private_netns():
    """Move this test process (and so everything it starts) into a network
    namespace of its own with only lo, up.  For cases that must bind all
    interfaces (the default listener, README examples): there "all" is
    loopback only, and no port of the machine is taken.  Skips without
    the privilege.  Once per process; later cases stay in it (harmless:
    loopback behaves the same)."""
    global _netns_done
    if _netns_done:
        return
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:            # CLONE_NEWNET
        raise Skip("cannot create a network namespace: %s"
                   % os.strerror(ctypes.get_errno()))
    ip = shutil.which("ip") or "/sbin/ip"
    r = subprocess.run([ip, "link", "set", "lo", "up"], capture_output=True, timeout=10)
    if r.returncode != 0:
        raise AssertionError("ip link set lo up: %s" % r.stderr.decode(errors="replace"))
    _netns_done = True


def run_acceptd(args, stdin=None, extra_env=None, argv0=None, preexec_fn=None,
                pass_fds=(), timeout=10):
    """Run acceptd to completion, for start-up failures and -h/-V.
    Returns (status, stdout text, stderr lines).  A process still running
    after timeout is killed by its pid and fails the test."""
    e = dict(os.environ)
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
              "JOURNAL_STREAM"):
        e.pop(k, None)
    e.update(extra_env or {})
    cmd = list(argv0 or [ACCEPTD]) + list(args)
    p = subprocess.Popen(cmd, env=e,
                         stdin=stdin if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         pass_fds=pass_fds, preexec_fn=preexec_fn)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=5)
        raise AssertionError("%s still running after %ss" % (cmd, timeout))
    return (p.returncode, out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace").splitlines())


def wait_until(pred, timeout=10, what="a condition", interval=0.02):
    """Poll pred() until it returns something true and return that;
    AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_stat(pid):
    """(state letter, ppid, pgrp) of a process from /proc, None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def proc_children(pid):
    """[(pid, state letter)] of every process whose parent is pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[1] == pid:
            out.append((int(name), st[0]))
    return out


def pid_dead(pid):
    """True when pid no longer runs (gone, or a zombie nobody reaped yet)."""
    st = proc_stat(pid)
    return st is None or st[0] in ("Z", "X")


def write_script(directory, name, text, mode=0o755):
    """Write an executable file and return its path."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# --- processes a test did not fork itself (inetd children, activated
# --- acceptds): found through /proc and stopped by pid (sources, inetd) ----

def talk(sockaddr, data=b"", family=socket.AF_INET, timeout=10):
    """Connect to a (host, port) tuple or unix path, send data, half-close,
    read to EOF.  Returns (the client's own address, the reply)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sockaddr)
        me = s.getsockname()
        if data:
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return me, read_all(s)


def descendants(pid):
    """Every live process below pid, parents before their children."""
    out, todo = [], [pid]
    while todo:
        for kid, state in proc_children(todo.pop(0)):
            if state not in ("Z", "X"):
                out.append(kid)
                todo.append(kid)
    return out


def stop_pid(pid, timeout=10):
    """SIGTERM one process by pid (one we did not fork: no status to
    collect), wait until it is dead; SIGKILL if it does not go.  Returns
    True if SIGTERM was enough."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        try:
            wait_until(lambda: pid_dead(pid), wait, "pid %d to exit" % pid)
            return sig == signal.SIGTERM
        except AssertionError:
            pass
    return False


def stop_tree(d, timeout=10):
    """Stop what a Daemon (an inetd, systemd-socket-activate -a) started,
    each by its pid, then the Daemon itself.  Daemon(..., tree=True) has
    the harness do this after each case (and a with block at its end)."""
    if d.proc.poll() is None:
        for pid in descendants(d.pid):
            stop_pid(pid, 5)
    return d.stop(timeout)


class closing_fds:
    """`with closing_fds(r, w):` - os.close() each fd (a pipe's ends, a
    pty's) when the block ends, also when it fails."""

    def __init__(self, *fds):
        self.fds = fds

    def __enter__(self):
        return self.fds

    def __exit__(self, *exc):
        for fd in self.fds:
            os.close(fd)
        return False


class closing_all:
    """`with closing_all(list) as held:` - close() every object in the list
    (sockets), also those appended to it inside the block, when it ends."""

    def __init__(self, items=None):
        self.items = [] if items is None else items

    def __enter__(self):
        return self.items

    def __exit__(self, *exc):
        for x in self.items:
            x.close()
        return False


COUNTERS = r"active (\d+) total (\d+) refused (\d+) failed (\d+)$"


def counters(d):
    """Ask for the counters (SIGUSR1) and return them as a dict."""
    mark = len(d.lines)
    d.signal(signal.SIGUSR1)
    m = d.wait_line(COUNTERS, start=mark)
    return dict(zip(("active", "total", "refused", "failed"), map(int, m.groups())))


def wait_counters(d, timeout=10, **want):
    """Poll the counters until those named in want have those values
    (connections end, and are reaped, asynchronously); returns them."""
    last = {}

    def ok():
        last.clear()
        last.update(counters(d))
        return all(last[k] == v for k, v in want.items())
    try:
        wait_until(ok, timeout, "counters %s" % want, interval=0.05)
    except AssertionError:
        raise AssertionError("counters %s, want %s; log:\n%s" % (last, want, d.log()))
    return last


def notify_socket():
    """A bound NOTIFY_SOCKET receiver and its path."""
    path = os.path.join(tmpdir(), "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    return ns, path


def notify_until(sock, want=b"READY=1", timeout=10):
    """Read datagrams from a NOTIFY_SOCKET receiver until one equals want;
    returns the messages before it.  fds that come along (FDSTORE=1) are
    closed: a test that wants them reads the socket itself."""
    seen = []
    sock.settimeout(timeout)
    while True:
        msg, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                for i in range(0, len(data) - len(data) % 4, 4):
                    os.close(int.from_bytes(data[i:i + 4], sys.byteorder))
        if msg == want:
            return seen
        seen.append(msg)


# --- what a process holds: the robustness and long tests ------------------

def proc_status(pid):
    """/proc/PID/status as {field: value text}."""
    with open("/proc/%d/status" % pid) as f:
        return dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)


def sigset_of(status, field):
    """The signal numbers in a SigIgn/SigBlk/SigCgt mask of proc_status."""
    mask = int(status[field].strip(), 16)
    return {n + 1 for n in range(64) if mask >> n & 1}


def vm_rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def sanitized(binary=None):
    """True when the binary was built with AddressSanitizer: its allocator
    keeps freed memory in quarantine, so RSS says nothing about leaks."""
    try:
        with open(binary or ACCEPTD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def connbench_binary():
    """connbench (../shared/bench/connbench.c next to the source tree),
    compiled into a fresh directory; None when the source or a compiler
    is missing - callers fall back to Python clients."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    src = os.path.join(os.path.dirname(top), "shared", "bench", "connbench.c")
    if not os.path.exists(src) or not shutil.which("cc"):
        return None
    out = os.path.join(tmpdir(), "connbench")
    r = subprocess.run(["cc", "-O2", "-pthread", "-o", out, src], capture_output=True,
                       timeout=120)
    return out if r.returncode == 0 else None


def reset_client(sockaddr, family=socket.AF_INET, data=b""):
    """Connect, optionally send data, then close with SO_LINGER 0: the
    peer gets a RST instead of a FIN."""
    import struct
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.settimeout(5)
        s.connect(sockaddr)
        if data:
            s.sendall(data)
    finally:
        s.close()


def traced_acceptd(pid):
    """The child of pid (strace, valgrind...) that runs acceptd, or None:
    by what it runs, since strace forks short-lived probes of its own
    first."""
    exe = os.path.realpath(ACCEPTD)
    for kid, _ in proc_children(pid):
        try:
            if os.readlink("/proc/%d/exe" % kid) == exe:
                return kid
        except OSError:
            pass
    return None


def fd_targets(pid):
    """{fd number: what it points at} of a process."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def sock_inodes(pid):
    """The socket inodes among pid's open fds."""
    return {int(m.group(1)) for m in
            (re.match(r"socket:\[(\d+)\]$", t) for t in fd_targets(pid).values()) if m}


def refused(addr):
    """True when a connect to ADDR is refused now (nothing listens)."""
    fam, sa = parse_addr(addr)
    if fam != socket.AF_UNIX and sa[0] in ("0.0.0.0", "::"):
        sa = ("127.0.0.1", sa[1])
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        try:
            s.connect(sa)
        except (ConnectionRefusedError, FileNotFoundError):
            return True
    return False
