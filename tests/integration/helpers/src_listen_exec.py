#!/usr/bin/env python3
"""src_listen_exec.py - hand fds to a program the way a service manager does.

    src_listen_exec.py [--pid PID|self] [--fds N] [--names A:B] FD... -- PROG [ARG]...

Each FD (inherited from the caller) becomes fd 3, 4, ... in order; then
LISTEN_PID (default: our own pid, which PROG keeps since we exec it),
LISTEN_FDS (default: the number of FDs) and LISTEN_FDNAMES (only with
--names) are set, and PROG replaces this process.  --pid/--fds take any
string, so garbage can be passed on purpose.
"""
import fcntl
import os
import sys


def main(argv):
    pid, fds, names, srcs = "self", None, None, []
    i = 0
    while argv[i] != "--":
        if argv[i] in ("--pid", "--fds", "--names"):
            opt, val = argv[i], argv[i + 1]
            i += 2
            if opt == "--pid":
                pid = val
            elif opt == "--fds":
                fds = val
            else:
                names = val
            continue
        srcs.append(int(argv[i]))
        i += 1
    prog = argv[i + 1:]
    # Two steps, so a source that already sits at 3.. is not overwritten
    # before it is moved: first above the target range, then into it.
    want = [os.fstat(fd) for fd in srcs]
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3 + len(srcs)) for fd in srcs]
    for n, fd in enumerate(high):
        os.dup2(fd, 3 + n)
        os.set_inheritable(3 + n, True)     # the one thing exec must keep
    for fd in set(high) | set(srcs):
        if fd >= 3 + len(srcs):
            os.close(fd)
    for n, st in enumerate(want):
        got = os.fstat(3 + n)
        assert (got.st_dev, got.st_ino) == (st.st_dev, st.st_ino), "fd %d is not FD" % (3 + n)
    os.environ["LISTEN_PID"] = str(os.getpid()) if pid == "self" else pid
    os.environ["LISTEN_FDS"] = str(len(srcs)) if fds is None else fds
    if names is not None:
        os.environ["LISTEN_FDNAMES"] = names
    else:
        os.environ.pop("LISTEN_FDNAMES", None)
    os.execv(prog[0], prog)


main(sys.argv[1:])
