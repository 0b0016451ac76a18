"""pool_badversion.py - a persistent acceptd worker (acceptd-workers(7))
that misbehaves in the handshake, for pool.py.

    pool_badversion.py            reads acceptd's HELLO on fd 3 and answers
                                  "HELLO 2 max=0", a version acceptd did not
                                  offer
    pool_badversion.py --silent   reads acceptd's HELLO and never answers

Either way it then stays, whatever acceptd does with the channel, until it
is killed: acceptd must stop it itself.  An alarm ends it after 60 s in any
case, so a broken acceptd cannot leave it behind.
"""
import os
import signal
import socket
import sys

signal.alarm(60)
ch = socket.socket(fileno=3)
hello = ch.recv(4096)
if "--silent" not in sys.argv:
    ch.send(b"HELLO 2 max=0")
while ch.recv(4096):        # STOP or anything else: not listening
    pass
while True:                 # end of file: still here, until killed
    signal.pause()
