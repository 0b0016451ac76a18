"""svcmgr.py - a small fake service manager: the receiving end of
NOTIFY_SOCKET (sd_notify(3)), with a file descriptor store, for the tests.

    from svcmgr import ServiceManager
    mgr = ServiceManager()                  # or ServiceManager(abstract=True)
    d = mgr.start(["-l", "127.0.0.1:0", "--", "/bin/cat"])
    before = mgr.ready(d)                   # messages d sent before READY=1
    ...
    d.stop(); d2 = mgr.start(...)           # gets the stored fds back
    mgr.close()                             # closes the socket and the store

A thread reads every datagram as it comes, as a real manager does: the
kernel queues only net.unix.max_dgram_qlen (often 10) datagrams, and a
reader that lags would block the sender.  Each message keeps its arrival
time and the sender's pid, uid and gid (SO_PASSCRED), so tests can tell
acceptd's messages from a worker's and one run's from the next.

The store follows systemd: FDSTORE=1 with FDNAME=N keeps the fd that came
with the message under N (a second copy of the same socket under the same
name replaces the first); FDSTOREREMOVE=1 with FDNAME=N closes it.
start() passes what is stored as LISTEN_FDS / LISTEN_FDNAMES, moved to
fds 3.. and with LISTEN_PID = the started process (src_listen_exec.py
does this and then execs acceptd in the same pid).  With keep_fds=False
the manager behaves like one with FileDescriptorStoreMax=0: it closes
whatever fds arrive.
"""
import os
import socket
import struct
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from acceptd_test import ACCEPTD, Daemon, tmpdir  # noqa: E402

LISTEN_EXEC = os.path.join(HERE, "src_listen_exec.py")
# Names that belong to the manager's protocols: never taken from the
# environment the tests run in.
PLUMBING = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
            "WATCHDOG_USEC", "WATCHDOG_PID", "FDSTORE", "JOURNAL_STREAM")
_UCRED = struct.Struct("iII")        # struct ucred: pid, uid, gid


class Message:
    """One datagram: its text, KEY=VALUE fields, the fds it carried
    (already handled by the store), the sender and the arrival time."""

    def __init__(self, text, nfds, pid, uid, gid, t):
        self.text, self.nfds = text, nfds
        self.pid, self.uid, self.gid, self.t = pid, uid, gid, t
        self.fields = dict(ln.split("=", 1) for ln in text.split("\n") if "=" in ln)

    def __repr__(self):
        return "<%r from %s at %.3f, %d fd(s)>" % (self.text, self.pid, self.t, self.nfds)


class ServiceManager:
    def __init__(self, abstract=False, keep_fds=True):
        self.keep_fds = keep_fds
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = "acceptd-test-%d-%s" % (os.getpid(), uuid.uuid4().hex[:12])
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # Reachable for a daemon that has dropped to nobody, as
            # systemd's /run/systemd/notify is.
            d = tmpdir()
            os.chmod(d, 0o755)
            self.address = os.path.join(d, "notify")
            self.sock.bind(self.address)
            os.chmod(self.address, 0o777)
        self.sock.settimeout(0.1)
        self.msgs = []
        self.store = {}          # FDNAME -> fd, in the order first stored
        self.events = []         # ("store" | "remove" | "replace", name, pid)
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    # --- the receiving side --------------------------------------------------

    def _read(self):
        space = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(253 * 4)
        while not self._stop:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(
                    65536, space, socket.MSG_CMSG_CLOEXEC)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            fds, cred = [], (None, None, None)
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    n = len(blob) // 4
                    fds += list(struct.unpack("%di" % n, blob[:n * 4]))
                elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    cred = _UCRED.unpack(blob[:_UCRED.size])
            m = Message(data.decode("utf-8", "replace"), len(fds), *cred, t)
            with self.cond:
                self._handle(m, fds)
                self.msgs.append(m)
                self.cond.notify_all()

    def _handle(self, m, fds):
        name = m.fields.get("FDNAME")
        if m.fields.get("FDSTORE") == "1" and self.keep_fds and name and len(fds) == 1:
            old = self.store.get(name)
            if old is not None:
                os.close(old)
                self.events.append(("replace", name, m.pid))
            else:
                self.events.append(("store", name, m.pid))
            self.store[name] = fds[0]
            return
        for fd in fds:
            os.close(fd)
        if m.fields.get("FDSTOREREMOVE") == "1" and name in self.store:
            os.close(self.store.pop(name))
            self.events.append(("remove", name, m.pid))

    def messages(self, pid=None, start=0):
        """The messages so far (from index start), only pid's if given."""
        with self.cond:
            return [m for m in self.msgs[start:] if pid is None or m.pid == pid]

    def texts(self, pid=None, start=0):
        return [m.text for m in self.messages(pid, start)]

    def mark(self):
        """An index for messages(start=...): what arrives from now on."""
        with self.cond:
            return len(self.msgs)

    def wait(self, pred, pid=None, timeout=10, start=0, what=None):
        """The first message (from index start, from pid if given) for
        which pred(message) holds - pred may be a text to match exactly;
        AssertionError after timeout."""
        if isinstance(pred, str):
            text, what = pred, what or repr(pred)
            pred = lambda m: m.text == text    # noqa: E731
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.msgs[start:]:
                    if (pid is None or m.pid == pid) and pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no notification %s from pid %s within %ss; got %r"
                                         % (what or "matching", pid, timeout, self.msgs[start:]))
                self.cond.wait(min(left, 0.2))

    def ready(self, d, timeout=10, start=0):
        """Wait for READY=1 from Daemon d; returns d's messages before it."""
        r = self.wait("READY=1", pid=d.pid, timeout=timeout, start=start)
        with self.cond:
            return [m for m in self.msgs[start:self.msgs.index(r)] if m.pid == d.pid]

    def quiet(self, secs, pid=None):
        """Observe for secs (a bounded window for something that must not
        happen, or a count over time); returns what arrived meanwhile."""
        start = self.mark()
        time.sleep(secs)
        return self.messages(pid, start)

    # --- the store -------------------------------------------------------------

    def stored(self):
        with self.cond:
            return dict(self.store)

    def add(self, name, sock):
        """Put a socket of the test's own into the store (as a socket unit
        would hand it), under name; the manager keeps a dup."""
        with self.cond:
            self.store[name] = os.dup(sock.fileno())

    def drop_store(self):
        """Close every stored fd: the manager holds no copy any more."""
        with self.cond:
            for fd in self.store.values():
                os.close(fd)
            self.store.clear()

    # --- starting the service ---------------------------------------------------

    def env(self, fdstore="16", extra=None):
        e = {k: v for k, v in os.environ.items() if k not in PLUMBING}
        e["NOTIFY_SOCKET"] = self.address
        if fdstore is not None:
            e["FDSTORE"] = str(fdstore)
        e.update(extra or {})
        return e

    def start(self, args, fdstore="16", extra_env=None, use_store=True, argv0=None,
              **kw):
        """acceptd ARGS as the service: NOTIFY_SOCKET (and FDSTORE unless
        None) set, the stored fds passed the systemd way (use_store).
        argv0 replaces ACCEPTD (e.g. a shell wrapper ending in it)."""
        env = self.env(fdstore, extra_env)
        prog = list(argv0 or [ACCEPTD])
        with self.cond:
            items = list(self.store.items()) if use_store else []
        if not items:
            return Daemon(args, env=env, argv0=prog, **kw)
        names = [n for n, _ in items]
        fds = [fd for _, fd in items]
        wrapper = [sys.executable, LISTEN_EXEC, "--names", ":".join(names)] + \
            [str(fd) for fd in fds] + ["--"] + prog
        return Daemon(args, env=env, argv0=wrapper, pass_fds=tuple(fds), **kw)

    def close(self):
        self._stop = True
        self._thread.join(5)
        self.sock.close()
        self.drop_store()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
