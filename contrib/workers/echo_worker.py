#!/usr/bin/env python3
"""echo_worker.py - a persistent acceptd worker in Python, stdlib only.

    acceptd --fd-passing -w 4 -l 7000 -- python3 echo_worker.py

The protocol (acceptd-workers(7)) in a few lines: text messages on the
SOCK_SEQPACKET socket at fd 3; each CONN message carries the connection's
fd.  Like echo-worker.c: one line about the client, then an echo.
"""
import os
import socket

ch = socket.socket(fileno=3)                      # acceptd's channel
hello = ch.recv(4096).split()
if hello[:1] != [b"HELLO"] or b"1" not in hello[1:]:
    ch.send(b"HELLO 1 max=1")                      # says what we speak; acceptd logs it
    raise SystemExit("echo_worker.py: acceptd does not speak protocol 1")
ch.send(b"HELLO 1 max=1")                          # version 1, one connection at a time


def done(conn_id):
    try:
        ch.send(b"DONE " + conn_id.encode())
    except BrokenPipeError:
        pass    # acceptd is reloading: the new image counts us until we exit


while True:
    try:
        msg, fds, _flags, _addr = socket.recv_fds(ch, 4096, 1)
    except ConnectionResetError:
        continue    # reported once, ahead of connections still queued
    words = msg.split()
    if not words or words[0] == b"STOP":           # told to stop, or acceptd is gone
        break
    if words[0] != b"CONN":
        continue                                   # unknown messages: later versions
    meta = dict(w.decode().split("=", 1) for w in words[1:] if b"=" in w)
    if not fds:                                    # the fd did not arrive (out of fds)
        done(meta["id"])
        continue
    with socket.socket(fileno=fds[0]) as conn:
        conn.sendall(("worker %d: %s %s %s via %s, connnum %s\n" % (
            os.getpid(), meta["proto"].lower(), meta.get("remote", ""),
            meta.get("rport", ""), meta["listener"], meta["connnum"])).encode())
        while data := conn.recv(16384):
            conn.sendall(data)
    done(meta["id"])
