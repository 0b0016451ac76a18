"""pool_flaky.py - a persistent acceptd worker (acceptd-workers(7)) that
does something else at each start, for pool.py's back-off cases.

    pool_flaky.py COUNTFILE STEP...

COUNTFILE counts the starts (one byte each); start n takes STEP n, the
last step repeating:

    fail        exits 1 at once, before HELLO: a crash on start
    live=SECS   answers HELLO, then exits 0 after SECS seconds of running
    stay        answers HELLO, then stays until STOP or end of file on its
                channel, and exits 0

It serves no connections (max=0 is only its answer to HELLO).  os._exit,
so that the channel closes with the process and acceptd logs the exit
status, never a SIGKILL of its own for a channel closed first.  An alarm
ends it after 60 s in any case.
"""
import os
import signal
import socket
import sys
import time

signal.alarm(60)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, b"x")
n = os.fstat(fd).st_size
os.close(fd)
steps = sys.argv[2:]
step = steps[min(n, len(steps)) - 1]
if step == "fail":
    os._exit(1)
ch = socket.socket(fileno=3)
ch.recv(4096)
ch.send(b"HELLO 1 max=0")
deadline = time.monotonic() + float(step[5:]) if step.startswith("live=") else None
while True:
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ch.settimeout(left)
    try:
        msg = ch.recv(4096)
    except socket.timeout:
        break
    if not msg or msg.split()[0] == b"STOP":
        break
os._exit(0)
