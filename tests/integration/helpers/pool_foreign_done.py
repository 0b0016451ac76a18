"""pool_foreign_done.py - a persistent acceptd worker (acceptd-workers(7))
that lies about which connections it is done with, for pool.py.

It answers HELLO with version 1 and no limit, and writes "PID ID\n" to each
connection it is given.  A line "done N" from a client makes it send
"DONE N" for an id it does not hold (another worker's); "bye" or EOF
closes that client with an honest DONE.  An alarm ends it after 120 s.
"""
import os
import selectors
import signal
import socket

signal.alarm(120)
ch = socket.socket(fileno=3)
ch.recv(4096)
ch.send(b"HELLO 1 max=0")

sel = selectors.DefaultSelector()
sel.register(ch, selectors.EVENT_READ, None)
while True:
    for key, _ev in sel.select():
        if key.data is None:
            msg, fds, _flags, _addr = socket.recv_fds(ch, 4096, 1)
            words = msg.split()
            if not words or words[0] == b"STOP":
                raise SystemExit(0)
            if words[0] != b"CONN" or not fds:
                continue
            ident = [w[3:] for w in words if w.startswith(b"id=")][0]
            conn = socket.socket(fileno=fds[0])
            conn.sendall(b"%d %s\n" % (os.getpid(), ident))
            sel.register(conn, selectors.EVENT_READ, ident)
        else:
            conn = key.fileobj
            data = conn.recv(4096)
            if data.startswith(b"done "):
                ch.send(b"DONE " + data.split()[1])
                conn.sendall(b"sent\n")
                continue
            sel.unregister(conn)
            conn.close()
            ch.send(b"DONE " + key.data)
