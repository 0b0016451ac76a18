#!/usr/bin/env python3
"""rules_worker.py - a persistent acceptd worker (--fd-passing) for
rules.py: it writes each CONN message it receives, as it came, to that
connection, one line, and closes it.  The test reads the env=/unenv=
words a --rules rule added.  Handshake as contrib/workers/echo_worker.py."""
import socket

ch = socket.socket(fileno=3)
hello = ch.recv(4096).split()
ch.send(b"HELLO 1 max=1")
if hello[:1] != [b"HELLO"] or b"1" not in hello[1:]:
    raise SystemExit("rules_worker.py: acceptd does not speak protocol 1")

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
            conn.sendall(msg + b"\n")
    try:
        ch.send(b"DONE " + conn_id)
    except BrokenPipeError:
        pass
