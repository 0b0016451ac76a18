#!/usr/bin/env python3
"""contain_worker.py - a persistent acceptd worker (--fd-passing) for
contain.py: it writes to each connection it receives, as one JSON line,
what it was started with - its /proc/self/limits text, its nice value
(os.getpriority) and its umask (os.umask, put back at once) - and its
pid, then closes it.  Handshake as contrib/workers/echo_worker.py."""
import json
import os
import socket

ch = socket.socket(fileno=3)
hello = ch.recv(4096).split()
ch.send(b"HELLO 1 max=1")
if hello[:1] != [b"HELLO"] or b"1" not in hello[1:]:
    raise SystemExit("contain_worker.py: acceptd does not speak protocol 1")


def report():
    with open("/proc/self/limits") as f:
        limits = f.read()
    mask = os.umask(0)
    os.umask(mask)
    return {"limits": limits, "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "umask": mask, "pid": os.getpid()}


while True:
    try:
        msg, fds, _flags, _addr = socket.recv_fds(ch, 8192, 1)
    except ConnectionResetError:
        continue
    words = msg.split()
    if not words or words[0] == b"STOP":
        break
    if words[0] != b"CONN":
        continue
    conn_id = dict(w.split(b"=", 1) for w in words[1:] if b"=" in w)[b"id"]
    for fd in fds:
        with socket.socket(fileno=fd) as conn:
            conn.sendall((json.dumps(report()) + "\n").encode())
    try:
        ch.send(b"DONE " + conn_id)
    except BrokenPipeError:
        pass
