"""pool_state.py - a persistent acceptd worker (acceptd-workers(7)) that
tells each client how it was started and what acceptd said, for pool.py.

Run as the worker PROGRAM, directly or through /bin/sh so the signal state
acceptd gave it is caught before the Python interpreter changes it (Python
ignores SIGPIPE and SIGXFSZ itself), with the raw environment passed on
(dash rebuilds the environment it execs with):

    acceptd --fd-passing -- /bin/sh -c 'exec "$0" "$1" \
        --sig "$(grep ^Sig /proc/$$/status)" \
        --environ "$(base64 -w0 /proc/$$/environ)"' python3 pool_state.py

It answers HELLO with version 1 and no limit, then for each CONN (each in
a thread of its own, so it serves any number at once) writes one
JSON line to the connection: the state it had at start - open fds and what
they are, the channel's socket type, the raw environment, pid, process
group, the --sig text - plus the HELLO acceptd sent, the CONN message's
words decoded, and the connection's own addresses.  It then reads until the
client closes, closes, and answers DONE.  STOP or end of file: it exits 0.
"""
import base64
import fcntl
import json
import os
import signal
import socket
import stat
import sys
import threading
import urllib.parse

signal.alarm(120)           # never outlive a broken test by much


def open_fds():
    names = os.listdir("/proc/self/fd")
    out = []
    for n in names:         # the directory's own fd is closed again by now
        try:
            os.fstat(int(n))
        except OSError:
            continue
        out.append(int(n))
    return sorted(out)


def describe(fd):
    st = os.fstat(fd)
    d = {"link": os.readlink("/proc/self/fd/%d" % fd), "sock": stat.S_ISSOCK(st.st_mode),
         "nonblock": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)}
    if d["sock"]:
        s = socket.socket(fileno=fd)
        try:
            d["type"] = int(s.type)
            d["family"] = int(s.family)
        finally:
            s.detach()
    return d


fds = open_fds()
START = {
    "fds": fds,
    "fd": {str(n): describe(n) for n in fds},
    "environ": [v.decode("utf-8", "surrogateescape")
                for v in (base64.b64decode(sys.argv[sys.argv.index("--environ") + 1])
                          if "--environ" in sys.argv else
                          open("/proc/self/environ", "rb").read()).split(b"\0") if v],
    "pid": os.getpid(),
    "pgid": os.getpgid(0),
    "ppid": os.getppid(),
    "sig": sys.argv[sys.argv.index("--sig") + 1] if "--sig" in sys.argv else None,
}


def serve(fd, meta, msg):
    with socket.socket(fileno=fd) as conn:
        try:
            names = {"sock": conn.getsockname(), "peer": conn.getpeername()}
        except OSError as e:
            names = {"error": e.strerror}
        rep = dict(START, hello=hello.decode("ascii", "replace"), conn=meta,
                   message=msg.decode("ascii", "replace"), names=names,
                   conn_fd=describe(fd))
        conn.sendall((json.dumps(rep) + "\n").encode())
        while conn.recv(65536):
            pass
    ch.send(b"DONE " + meta["id"].encode())


ch = socket.socket(fileno=3)
hello = ch.recv(4096)
ch.send(b"HELLO 1 max=0")
threads = []
while True:
    msg, got, _flags, _addr = socket.recv_fds(ch, 4096, 1)
    words = msg.split()
    if not words or words[0] == b"STOP":
        break
    if words[0] != b"CONN":
        continue
    meta = {}
    for w in words[1:]:
        if b"=" in w:
            k, v = w.split(b"=", 1)
            meta[k.decode()] = urllib.parse.unquote_to_bytes(v).decode("utf-8", "surrogateescape")
    if not got:
        ch.send(b"DONE " + meta["id"].encode())
        continue
    t = threading.Thread(target=serve, args=(got[0], meta, msg), daemon=True)
    t.start()
    threads.append(t)
for t in threads:               # STOP: finish what is open, then exit
    t.join()
