"""contain.py - --rlimit, --nice and --umask (#17, step 1): what every
handler and worker acceptd starts begins with, and acceptd itself never.

What the processes see is read where they are: a spawned handler is
/bin/cat of its own /proc/self/limits, stat (the nice value is field 19)
and status (Umask), written to the connection; a built-in pool worker is
read from /proc/WORKERPID/... while it runs; a persistent --fd-passing
worker (helpers/contain_worker.py) reports its /proc/self/limits,
os.getpriority and os.umask through each connection.  acceptd's own
limits, nice value and umask are compared with a plain acceptd started
alongside: the options must not touch the master.

Limits that bite: a handler that allocates past --rlimit as=64M gets a
MemoryError in its own process (acceptd logs its exit status with -v and
serves the next connection); --rlimit cpu=1 ends a busy loop with SIGKILL
(cpu=1:3 with SIGXCPU); nofile=16 stops a handler's 17th fd.  nproc is
tested under -u with a bare uid no other process uses, as root ignores
RLIMIT_NPROC (CAP_SYS_RESOURCE) and other users' processes would count.

Errors: a bad value is a usage error (exit 2, one line naming the option
and the value; from a file, FILE:LINE and the key).  Once -u drops
privileges, a hard limit above acceptd's own or a nice value below its
own (beyond RLIMIT_NICE) is refused (exit 1), and a SIGHUP reload whose
file asks for one is refused and logged while the old image serves on.
The cases that need root (-u, nproc) fail without it: the tests run as
root in CI."""
import json
import os
import re
import resource
import shutil
import signal
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from acceptd_test import (ACCEPTD, Daemon, Skip, case, connect, exchange, proc_children,  # noqa: E402
                          read_all, run, run_acceptd, stop_pid, tmpdir, wait_counters,
                          wait_until)

PY = sys.executable
WORKER = os.path.join(HERE, "helpers", "contain_worker.py")
INF = resource.RLIM_INFINITY
K, M, G, T = 1 << 10, 1 << 20, 1 << 30, 1 << 40
# A spawned handler reporting what it was started with: cat is the process
# acceptd executed, so its /proc/self is the handler's.
REPORT = ["/bin/cat", "/proc/self/limits", "/proc/self/stat", "/proc/self/status"]
ROWS = {"as": "Max address space", "cpu": "Max cpu time", "data": "Max data size",
        "fsize": "Max file size", "nofile": "Max open files", "nproc": "Max processes",
        "core": "Max core file size", "stack": "Max stack size",
        "memlock": "Max locked memory"}
RES = {"as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU, "data": resource.RLIMIT_DATA,
       "fsize": resource.RLIMIT_FSIZE, "nofile": resource.RLIMIT_NOFILE,
       "nproc": resource.RLIMIT_NPROC, "core": resource.RLIMIT_CORE,
       "stack": resource.RLIMIT_STACK, "memlock": resource.RLIMIT_MEMLOCK}


# --- reading what a process started with -------------------------------------

def parse_limits(text):
    """/proc/PID/limits text -> {name: (soft, hard)} for acceptd's nine."""
    by_row = {}
    for line in text.splitlines():
        m = re.match(r"^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            by_row[m.group(1)] = tuple(INF if v == "unlimited" else int(v)
                                       for v in m.group(2, 3))
    return {name: by_row[row] for name, row in ROWS.items()}


def parse_report(text):
    """cat /proc/self/{limits,stat,status} -> {limits, nice, umask}."""
    stat = next(ln for ln in text.splitlines() if re.match(r"^\d+ \(", ln))
    fields = stat[stat.rindex(")") + 2:].split()
    umask = re.search(r"^Umask:\s+([0-7]+)$", text, re.M)
    return {"limits": parse_limits(text), "nice": int(fields[16]),   # field 19
            "umask": int(umask.group(1), 8) if umask else None}


def proc_report(pid):
    """The same, read from outside: /proc/PID of a running process."""
    text = ""
    for name in ("limits", "stat", "status"):
        with open("/proc/%d/%s" % (pid, name)) as f:
            text += f.read() + "\n"
    return parse_report(text)


def handler_report(addr):
    return parse_report(exchange(addr).decode())


def own_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def limit_text(v):
    return "unlimited" if v == INF else str(v)


def assert_sees(rep, what, limits=None, nice=None, umask=None):
    """rep shows these limits ({name: (soft, hard)}), nice value and umask."""
    for name, want in (limits or {}).items():
        got = rep["limits"][name]
        assert got == want, "%s: %s is %s:%s, want %s:%s" % (
            what, name, limit_text(got[0]), limit_text(got[1]),
            limit_text(want[0]), limit_text(want[1]))
    if nice is not None:
        assert rep["nice"] == nice, "%s: nice %d, want %d" % (what, rep["nice"], nice)
    if umask is not None:
        assert rep["umask"] == umask, "%s: umask %04o, want %04o" % (what, rep["umask"], umask)


def assert_untouched(pid, plain_pid, what):
    """acceptd pid started as plain_pid was, whatever its options: the same
    limits, and the nice value and umask of the process that started both."""
    a, b = proc_report(pid), proc_report(plain_pid)
    assert a["limits"] == b["limits"], "%s: its own limits changed: %s, a plain acceptd %s" % (
        what, a["limits"], b["limits"])
    assert_sees(a, what + " (its own)", nice=os.getpriority(os.PRIO_PROCESS, 0),
                umask=own_umask())


def live_children(pid):
    return [p for p, state in proc_children(pid) if state not in ("Z", "X")]


def rlimit_args(spec):
    out = []
    for s in spec:
        out += ["--rlimit", s]
    return out


CAP_SYS_NICE, CAP_SYS_RESOURCE = 23, 24


def has_cap(cap):
    with open("/proc/self/status") as f:
        eff = int(re.search(r"^CapEff:\s+([0-9a-f]+)$", f.read(), re.M).group(1), 16)
    return bool(eff >> cap & 1)


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root: -u, and raising limits, need a root acceptd")


def unused_uid():
    """A uid with no passwd entry and no process: what RLIMIT_NPROC counts
    for it is acceptd's own processes only."""
    import pwd
    for uid in range(64700 + os.getpid() % 200, 65000):
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        if not uid_pids(uid):
            return uid
    raise AssertionError("no free uid in 64700-65000")


def uid_pids(uid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat("/proc/" + name).st_uid == uid:
                    out.append(int(name))
            except FileNotFoundError:
                pass
    return out


# --- 1. what the handler sees: spawn mode --------------------------------------

EVERY = ["as=512M", "cpu=30:60", "data=infinity", "fsize=1T:unlimited", "nofile=64:128",
         "nproc=1000:2000", "core=0", "stack=8M:16M", "memlock=64K:128K"]
EVERY_WANT = {"as": (512 * M, 512 * M), "cpu": (30, 60), "data": (INF, INF),
              "fsize": (T, INF), "nofile": (64, 128), "nproc": (1000, 2000), "core": (0, 0),
              "stack": (8 * M, 16 * M), "memlock": (64 * K, 128 * K)}


@case
def spawn_handler_starts_with_every_limit_nice_and_umask():
    """All nine names, each form (N, N with a suffix, SOFT:HARD, unlimited,
    infinity), --nice 7, --umask 027: every handler sees them; acceptd's
    own limits, nice and umask are those of a plain acceptd."""
    need_root()      # raising hard limits (stack, memlock) above the test's
    plain = Daemon(["-l", "127.0.0.1:0", "--"] + REPORT)
    d = Daemon(["-l", "127.0.0.1:0"] + rlimit_args(EVERY) +
               ["--nice", "7", "--umask", "027", "--"] + REPORT)
    addr, = d.listening()
    plain.listening()
    for i in range(2):
        assert_sees(handler_report(addr), "handler %d" % i, EVERY_WANT, nice=7, umask=0o027)
    assert_untouched(d.pid, plain.pid, "acceptd")
    # The plain one's handlers: acceptd's own values, no others.
    paddr, = plain.listening()
    rep = handler_report(paddr)
    own = proc_report(plain.pid)
    assert_sees(rep, "a plain acceptd's handler", own["limits"],
                nice=os.getpriority(os.PRIO_PROCESS, 0), umask=own_umask())


@case
def root_with_the_capabilities_is_refused_nothing():
    """Without -u nothing is refused that acceptd may give: --nice -5 under
    CAP_SYS_NICE; with CAP_SYS_RESOURCE (not every root has it: a container
    may drop it) a hard limit above the one acceptd was started with.
    Root without those capabilities is refused at start-up (exit 1), as a
    dropped acceptd is: its handlers could not be given them."""
    need_root()

    def lower():
        resource.setrlimit(resource.RLIMIT_FSIZE, (G, G))
    d = Daemon(["-l", "127.0.0.1:0", "--nice", "-5", "--rlimit", "fsize=1G:1G", "--"] + REPORT,
               preexec_fn=lower)
    addr, = d.listening()
    assert_sees(handler_report(addr), "handler", {"fsize": (G, G)}, nice=-5)
    if has_cap(CAP_SYS_RESOURCE):
        d = Daemon(["-l", "127.0.0.1:0", "--rlimit", "fsize=unlimited", "--"] + REPORT,
                   preexec_fn=lower)
        addr, = d.listening()
        assert_sees(handler_report(addr), "handler", {"fsize": (INF, INF)})
        assert proc_report(d.pid)["limits"]["fsize"] == (G, G)
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    for drop, args, pattern in (
            ("-sys_resource", ["--rlimit", "fsize=unlimited"],
             r"--rlimit fsize: a hard limit above acceptd's own \(%d\).*CAP_SYS_RESOURCE" % G),
            ("-sys_nice", ["--nice", "-5"],
             r"--nice -5: below acceptd's own nice value \(0\).*CAP_SYS_NICE")):
        def fn():
            lower()
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        rc, _, err = run_acceptd(["-l", "127.0.0.1:0"] + args + ["--"] + REPORT,
                                 argv0=[setpriv, "--bounding-set", drop, "--inh-caps", drop,
                                        ACCEPTD], preexec_fn=fn)
        assert rc == 1 and any(re.search(pattern, ln) for ln in err), \
            "root without %s, %s: exit %d, %s" % (drop[1:], args, rc, err)


@case
def a_repeated_name_replaces_the_earlier_one():
    """--rlimit nofile given 12 times and cpu twice: the last of each
    counts, and they take no more room than one each (14 > 9 names)."""
    spec = ["nofile=%d" % (30 + i) for i in range(11)] + ["cpu=5", "nofile=40:50",
                                                         "cpu=unlimited"]
    d = Daemon(["-l", "127.0.0.1:0"] + rlimit_args(spec) + ["--"] + REPORT)
    addr, = d.listening()
    assert_sees(handler_report(addr), "handler", {"nofile": (40, 50), "cpu": (INF, INF)})


@case
def config_keys_and_the_command_line_replacing_them():
    """rlimit (repeatable), nice and umask in a --config file; on the command
    line --rlimit replaces the file's whole list and --nice its nice, while
    the file's umask stays."""
    conf = os.path.join(tmpdir(), "acceptd.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:0\nrlimit = cpu=50\nrlimit = nofile=100:200\n"
                "nice = 3\numask = 0077\nexec = %s\n" % " ".join(REPORT))
    d = Daemon(["--config", conf])
    addr, = d.listening()
    assert_sees(handler_report(addr), "handler (file)", {"cpu": (50, 50), "nofile": (100, 200)},
                nice=3, umask=0o077)
    d.stop()
    d = Daemon(["--config", conf, "--rlimit", "core=0", "--nice", "2"])
    addr, = d.listening()
    own = proc_report(d.pid)["limits"]
    assert_sees(handler_report(addr), "handler (file and command line)",
                {"core": (0, 0), "cpu": own["cpu"], "nofile": own["nofile"]},
                nice=2, umask=0o077)


# --- 2. built-in pool workers and persistent workers ------------------------------

# Not as or data: a worker is acceptd's own code, and an ASan build's
# shadow memory would not fit.
POOL = ["cpu=100:200", "nofile=256:512", "core=0", "fsize=1G", "stack=4M:8M", "memlock=32K"]
POOL_WANT = {"cpu": (100, 200), "nofile": (256, 512), "core": (0, 0), "fsize": (G, G),
             "stack": (4 * M, 8 * M), "memlock": (32 * K, 32 * K)}


@case
def builtin_pool_workers_start_with_them():
    need_root()
    plain = Daemon(["-b", "echo", "-w", "2", "-l", "127.0.0.1:0"])
    d = Daemon(["-b", "echo", "-w", "2", "-l", "127.0.0.1:0"] + rlimit_args(POOL) +
               ["--nice", "6", "--umask", "0077"])
    addr, = d.listening()
    plain.listening()
    workers = wait_until(lambda: len(live_children(d.pid)) == 2 and live_children(d.pid),
                         what="2 workers")
    for w in workers:
        assert_sees(proc_report(w), "worker pid %d" % w, POOL_WANT, nice=6, umask=0o077)
    assert exchange(addr, b"contained echo") == b"contained echo"
    assert_untouched(d.pid, plain.pid, "acceptd -b echo")
    # A worker restarted after a crash starts with them too.
    os.kill(workers[0], signal.SIGKILL)
    again = wait_until(lambda: [w for w in live_children(d.pid) if w not in workers],
                       what="a new worker")
    assert_sees(proc_report(again[0]), "restarted worker", POOL_WANT, nice=6, umask=0o077)


@case
def persistent_fd_passing_workers_start_with_them():
    """Each --fd-passing worker reports what it runs with, through the
    connection; acceptd holds the same as a plain one."""
    need_root()
    spec = ["as=1G", "nofile=100:200", "cpu=300", "core=0"]
    want = {"as": (G, G), "nofile": (100, 200), "cpu": (300, 300), "core": (0, 0)}
    plain = Daemon(["--fd-passing", "-w", "2", "-l", "127.0.0.1:0", "--", PY, WORKER])
    d = Daemon(["-v", "--fd-passing", "-w", "2", "-l", "127.0.0.1:0"] + rlimit_args(spec) +
               ["--nice", "4", "--umask", "0007", "--", PY, WORKER])
    addr, = d.listening()
    plain.listening()
    seen = set()
    for i in range(6):
        rep = json.loads(exchange(addr))
        assert_sees({"limits": parse_limits(rep["limits"]), "nice": rep["nice"],
                     "umask": rep["umask"]}, "worker pid %d" % rep["pid"], want, 4, 0o007)
        seen.add(rep["pid"])
    workers = live_children(d.pid)
    assert seen <= set(workers), (seen, workers)
    for w in workers:           # the one no connection reached, too
        assert_sees(proc_report(w), "worker pid %d" % w, want, nice=4, umask=0o007)
    assert_untouched(d.pid, plain.pid, "acceptd --fd-passing")


# --- 3. limits that bite, and acceptd serving on --------------------------------

ALLOC = r"""
import sys
want = sys.stdin.buffer.readline().strip()
try:
    buf = bytearray(200 * 2**20 if want == b"big" else 2**20)
except MemoryError:
    sys.stdout.write("MemoryError\n")
    sys.stdout.flush()
    raise
sys.stdout.write("allocated %d\n" % len(buf))
"""


@case
def address_space_limit_fails_inside_the_handler_and_acceptd_serves_on():
    d = Daemon(["-v", "-l", "127.0.0.1:0", "--rlimit", "as=64M", "--", PY, "-c", ALLOC])
    addr, = d.listening()
    assert exchange(addr, b"small\n") == b"allocated 1048576\n"
    d.wait_line(r"end \S+ pid \d+ status 0")
    mark = len(d.lines)
    assert exchange(addr, b"big\n") == b"MemoryError\n"
    m = d.wait_line(r"end \S+ pid (\d+) (status \d+|killed by signal \d+)", start=mark)
    assert m.group(2) == "status 1", "the handler's end: %s" % m.group(0)
    assert "MemoryError" in d.log()      # Python's traceback, on acceptd's stderr
    # acceptd's own address space is its own, and it goes on serving.
    assert proc_report(d.pid)["limits"]["as"] == resource.getrlimit(resource.RLIMIT_AS)
    for _ in range(3):
        assert exchange(addr, b"small\n") == b"allocated 1048576\n"
    assert d.proc.poll() is None


BUSY = ["/bin/sh", "-c", "printf x; while :; do :; done"]


def busy_handler_killed(spec, signals):
    d = Daemon(["-v", "-l", "127.0.0.1:0"] + rlimit_args(spec) + ["--"] + BUSY)
    addr, = d.listening()
    with connect(addr, timeout=60) as c:
        assert c.recv(1) == b"x"
        c.shutdown(socket.SHUT_WR)
        assert read_all(c) == b""          # the handler ended: EOF
    m = d.wait_line(r"end \S+ pid \d+ (status \d+|killed by signal (\d+))", start=0, timeout=30)
    assert m.group(2) and int(m.group(2)) in signals, "%s, want a signal of %s" % (
        m.group(0), signals)
    # The next connection is served (and is ended the same way).
    with connect(addr, timeout=60) as c:
        assert c.recv(1) == b"x"
    assert d.proc.poll() is None


@case
def cpu_limit_kills_a_busy_handler_with_sigkill():
    """cpu=1 (soft = hard): the hard limit's SIGKILL."""
    busy_handler_killed(["cpu=1"], (signal.SIGKILL,))


@case
def cpu_soft_limit_sends_sigxcpu():
    """cpu=1:3: SIGXCPU at the soft limit, which ends the shell (core=0: no
    core file)."""
    busy_handler_killed(["cpu=1:3", "core=0"], (signal.SIGXCPU,))


FDS = r"""
import os
fds = []
try:
    while True:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    print("%s %d" % (os.strerror(e.errno), max(fds)))
"""


@case
def nofile_limit_stops_the_handlers_17th_fd():
    d = Daemon(["-l", "127.0.0.1:0", "--rlimit", "nofile=16", "--", PY, "-c", FDS])
    addr, = d.listening()
    assert exchange(addr) == b"%s 15\n" % os.strerror(24).encode()    # EMFILE


@case
def nproc_limit_counts_the_users_processes():
    """-u with a bare uid nothing else runs as: acceptd (1) and the handler
    (1) leave room for 2 of the handler's children under nproc=4, not a
    third.  acceptd's own RLIMIT_NPROC is untouched, so it goes on spawning."""
    need_root()
    uid = unused_uid()
    forks = ["/bin/sh", "-c", "for i in 1 2 3 4 5; do sleep 30 </dev/null >/dev/null 2>&1 & "
             "echo $i; done"]
    d = Daemon(["-u", str(uid), "-l", "127.0.0.1:0", "--rlimit", "nproc=4", "--"] + forks)
    addr, = d.listening()
    try:
        for i in range(2):
            assert exchange(addr) == b"1\n2\n", d.log()
            # Its two sleeps end, and are reaped (a zombie still counts):
            # the next handler has the same room.
            for pid in uid_pids(uid):
                if pid != d.pid:
                    stop_pid(pid, 5)
            wait_until(lambda: uid_pids(uid) == [d.pid], what="only acceptd left as uid %d" % uid)
        assert proc_report(d.pid)["limits"]["nproc"] == resource.getrlimit(resource.RLIMIT_NPROC)
    finally:
        d.stop()
        for pid in uid_pids(uid):
            stop_pid(pid, 5)


@case
def nofile_above_nr_open_is_refused_at_start_up():
    """The kernel refuses a nofile above fs.nr_open even to root: refused
    before anything is served (exit 1), not by every handler."""
    with open("/proc/sys/fs/nr_open") as f:
        nr_open = int(f.read())
    for args in (["-b", "echo", "-w", "1"], ["--", "/bin/true"]):
        rc, _, err = run_acceptd(["-l", "127.0.0.1:0", "--rlimit", "nofile=%d" % (nr_open + 1)]
                                 + args)
        assert rc == 1 and any(re.search(r"--rlimit nofile: %d is above fs.nr_open \(%d\)"
                                         % (nr_open + 1, nr_open), ln) for ln in err), (rc, err)


@case
def a_value_the_kernel_refuses_later_fails_that_handler_not_acceptd():
    """acceptd (-u nobody --nice 5) reniced to 10 under it after the
    check: the vfork child's setpriority fails, that connection is closed
    and counted failed, the log says so, and acceptd serves on - the next
    handler starts at 5 again once acceptd is back at 0."""
    need_root()
    d = Daemon(["-u", "nobody", "-l", "127.0.0.1:0", "--nice", "5", "--"] + REPORT,
               preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0))
    addr, = d.listening()
    assert_sees(handler_report(addr), "handler", nice=5)
    os.setpriority(os.PRIO_PROCESS, d.pid, 10)
    mark = len(d.lines)
    assert exchange(addr) == b""
    d.wait_line(r"--rlimit/--nice/--umask: the kernel refused them for a new process: "
                r"Permission denied", start=mark)
    d.wait_line(r"cannot start handler: Permission denied", start=mark)
    assert wait_counters(d, active=0)["failed"] == 1
    os.setpriority(os.PRIO_PROCESS, d.pid, 0)
    assert_sees(handler_report(addr), "handler", nice=5)
    assert wait_counters(d, active=0)["failed"] == 1


# --- 4. usage errors -----------------------------------------------------------

BAD = [
    ("--rlimit", "rss=1"), ("--rlimit", "as"), ("--rlimit", "as="), ("--rlimit", "=5"),
    ("--rlimit", "as=abc"), ("--rlimit", "as=10X"), ("--rlimit", "as=1.5G"),
    ("--rlimit", "cpu=1K"), ("--rlimit", "nofile=1K"), ("--rlimit", "as=-1"),
    ("--rlimit", "nofile=unlimited"), ("--rlimit", "nofile=10:unlimited"),
    ("--rlimit", "as=2G:1G"), ("--rlimit", "as=unlimited:1G"), ("--rlimit", "as=1G:"),
    ("--rlimit", "as=1:2:3"), ("--rlimit", "AS=1G"), ("--rlimit", "as=99999999999T"),
    ("--nice", "20"), ("--nice", "-21"), ("--nice", "abc"), ("--nice", ""), ("--nice", "+5"),
    ("--nice", "5x"), ("--nice", "-0"), ("--nice", "07"),
    ("--umask", "8"), ("--umask", "0x12"), ("--umask", "00777"), ("--umask", ""),
    ("--umask", "-1"), ("--umask", "u=rwx"),
]


@case
def bad_values_are_usage_errors_naming_the_option():
    for opt, value in BAD:
        rc, out, err = run_acceptd([opt, value, "-l", "127.0.0.1:0", "-b", "echo"])
        what = "%s %r" % (opt, value)
        assert rc == 2, "%s: exit %d, want 2; stderr %s" % (what, rc, err)
        assert len(err) == 1, "%s: want one line, got %s" % (what, err)
        assert opt in err[0] and "'%s'" % value in err[0], "%s: %s" % (what, err[0])
        assert "listening" not in out + " ".join(err)


@case
def bad_values_in_a_config_file_name_file_line_and_key():
    d = tmpdir()
    for key, value in (("rlimit", "rss=1"), ("rlimit", "nofile=unlimited"), ("nice", "99"),
                       ("umask", "9")):
        conf = os.path.join(d, "acceptd.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:0\n# a comment\n%s = %s\n" % (key, value))
        rc, _, err = run_acceptd(["--config", conf])
        assert rc == 2, "%s = %s: exit %d; %s" % (key, value, rc, err)
        assert len(err) == 1 and "%s:3:" % conf in err[0] and key in err[0] and \
            value in err[0], "%s = %s: %s" % (key, value, err)


# --- 5. once privileges are dropped: what the kernel would refuse every child ----

def refused_after_drop(args, pattern, preexec_fn=None):
    rc, _, err = run_acceptd(["-u", "nobody", "-l", "127.0.0.1:0"] + args + ["--"] + REPORT,
                             preexec_fn=preexec_fn)
    assert rc == 1, "%s: exit %d, want 1; stderr %s" % (args, rc, err)
    assert any(re.search(pattern, ln) for ln in err), "%s: no /%s/ in %s" % (args, pattern, err)
    return err


def starts_after_drop(args, preexec_fn=None):
    d = Daemon(["-u", "nobody", "-l", "127.0.0.1:0"] + args + ["--"] + REPORT,
               preexec_fn=preexec_fn)
    addr, = d.listening()
    return d, handler_report(addr)


def own_hard(res, value):
    def fn():
        resource.setrlimit(res, (value, value))
    return fn


@case
def dropped_acceptd_refuses_a_hard_limit_above_its_own():
    need_root()
    fsize = own_hard(resource.RLIMIT_FSIZE, G)
    refused_after_drop(["--rlimit", "fsize=unlimited"],
                       r"--rlimit fsize: a hard limit above acceptd's own \(%d\), which only "
                       r"root can raise" % G, fsize)
    refused_after_drop(["--rlimit", "fsize=512M:2G"], r"--rlimit fsize: .*only root can raise",
                       fsize)
    # Up to its own is fine, also all of it, and the soft one alone.
    for spec, want in (("fsize=512M:1G", (512 * M, G)), ("fsize=1G", (G, G)),
                       ("fsize=64M", (64 * M, 64 * M))):
        d, rep = starts_after_drop(["--rlimit", spec], fsize)
        assert_sees(rep, "handler of -u nobody --rlimit " + spec, {"fsize": want})
        d.stop()
    # as=unlimited:unlimited under a finite own address space (2**46: room
    # for an ASan build's shadow memory).
    refused_after_drop(["--rlimit", "as=unlimited:unlimited"],
                       r"--rlimit as: a hard limit above acceptd's own \(%d\), which only root "
                       r"can raise" % (1 << 46), own_hard(resource.RLIMIT_AS, 1 << 46))
    # Under root's (unlimited) hard limits nothing is above them.
    if resource.getrlimit(resource.RLIMIT_AS)[1] == INF:
        d, rep = starts_after_drop(["--rlimit", "as=unlimited:unlimited"])
        assert_sees(rep, "handler", {"as": (INF, INF)})


@case
def dropped_acceptd_refuses_a_nice_value_below_its_own():
    need_root()

    def at(n, rlimit_nice=None):
        def fn():
            os.setpriority(os.PRIO_PROCESS, 0, n)
            if rlimit_nice is not None:
                resource.setrlimit(resource.RLIMIT_NICE, (rlimit_nice, rlimit_nice))
        return fn
    zero = at(0, 0)
    refused_after_drop(["--nice", "-5"],
                       r"--nice -5: below acceptd's own nice value \(0\), which only root", zero)
    refused_after_drop(["--nice", "5"], r"--nice 5: below acceptd's own nice value \(10\)",
                       at(10, 0))
    for n, fn in ((0, zero), (5, zero), (19, zero), (10, at(10, 0))):
        d, rep = starts_after_drop(["--nice", str(n)], fn)
        assert_sees(rep, "handler of -u nobody --nice %d" % n, nice=n)
        d.stop()
    # RLIMIT_NICE 30 lets an unprivileged process go down to 20 - 30 = -10
    # (where the test may raise it: its hard limit, or CAP_SYS_RESOURCE).
    hard = resource.getrlimit(resource.RLIMIT_NICE)[1]
    if hard == INF or hard >= 30 or has_cap(CAP_SYS_RESOURCE):
        d, rep = starts_after_drop(["--nice", "-10"], at(0, 30))
        assert_sees(rep, "handler under RLIMIT_NICE 30", nice=-10)
        d.stop()
        refused_after_drop(["--nice", "-11"], r"--nice -11: below", at(0, 30))


@case
def reload_refuses_what_the_dropped_image_could_not_give():
    """-u nobody from a file; SIGHUP with a nice value below acceptd's own,
    then with a hard limit above its own: each reload refused and logged,
    the old image serving on with the old values; then a good file
    reloads and the handlers start with its values."""
    need_root()
    conf = os.path.join(tmpdir(), "acceptd.conf")
    os.chmod(os.path.dirname(conf), 0o755)

    def write(nice, fsize):
        with open(conf, "w") as f:
            f.write("user = nobody\nlisten = 127.0.0.1:0\nnice = %s\nrlimit = fsize=%s\n"
                    "exec = %s\n" % (nice, fsize, " ".join(REPORT)))
        os.chmod(conf, 0o644)

    def old_values():
        assert_sees(handler_report(addr), "handler after the refused reload",
                    {"fsize": (256 * M, 512 * M)}, nice=3)

    write(3, "256M:512M")
    d = Daemon(["--config", conf], preexec_fn=own_hard(resource.RLIMIT_FSIZE, G))
    addr, = d.listening()
    old_values()
    refusals = ((-5, "256M:512M",
                 r"reload: --nice -5: below acceptd's own nice value \(0\).*still serving"),
                (3, "2G", r"reload: --rlimit fsize: a hard limit above acceptd's own \(%d\)"
                 r".*still serving" % G))
    for nice, fsize, pattern in refusals:
        write(nice, fsize)
        mark = len(d.lines)
        d.signal(signal.SIGHUP)
        d.wait_line(pattern, start=mark)
        assert not any("reload: done" in ln for ln in d.lines[mark:])
        old_values()
        assert d.proc.poll() is None
    write(8, "1G")
    mark = len(d.lines)
    d.signal(signal.SIGHUP)
    d.wait_line(r"reload: done", start=mark)
    assert_sees(handler_report(addr), "handler after the good reload", {"fsize": (G, G)}, nice=8)
    assert proc_report(d.pid)["limits"]["fsize"] == (G, G)


if __name__ == "__main__":
    run()
