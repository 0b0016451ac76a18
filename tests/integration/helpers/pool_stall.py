"""pool_stall.py - a persistent acceptd worker (acceptd-workers(7)) that is
slow to read its channel, for pool.py.

It answers HELLO with version 1 and no limit (max=0), then does not read
its channel at all until it gets SIGUSR1 - a worker busy elsewhere for a
moment.  From then on it serves every connection it is given, all from one
selector loop, as an echo until the client closes, and answers DONE.  STOP
or end of file: it finishes what it holds, then exits 0.  An alarm ends it
after 120 s in any case.
"""
import selectors
import signal
import socket

signal.alarm(120)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
ch = socket.socket(fileno=3)
ch.recv(4096)
ch.send(b"HELLO 1 max=0")
signal.sigwait({signal.SIGUSR1})

sel = selectors.DefaultSelector()
sel.register(ch, selectors.EVENT_READ, None)
open_conns = 0
stopping = False
while not stopping or open_conns:
    for key, _ev in sel.select():
        if key.data is None:
            msg, fds, _flags, _addr = socket.recv_fds(ch, 4096, 1)
            words = msg.split()
            if not words or words[0] == b"STOP":
                stopping = True
                sel.unregister(ch)
                continue
            if words[0] != b"CONN":
                continue
            ident = [w[3:] for w in words if w.startswith(b"id=")][0]
            if not fds:
                ch.send(b"DONE " + ident)
                continue
            conn = socket.socket(fileno=fds[0])
            sel.register(conn, selectors.EVENT_READ, ident)
            open_conns += 1
        else:
            conn = key.fileobj
            data = conn.recv(65536)
            if data:
                conn.setblocking(True)
                conn.sendall(data)          # small echoes: never blocks for long
                continue
            sel.unregister(conn)
            conn.close()
            open_conns -= 1
            ch.send(b"DONE " + key.data)
