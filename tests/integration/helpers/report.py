"""report.py - a handler that tells its client how it was started.

Run as PROGRAM (python3 report.py [ARG]...).  Writes one JSON line to fd 1,
the connection: argv, the raw environment (/proc/self/environ, so duplicate
names show), the fds it has open, what fds 0-2 are, the socket names of
fd 0, its pid and process group.  Then, with --hold, reads fd 0 until EOF
(the client closing), and exits with --exit N (default 0).

The signal mask and dispositions are not reported here: the Python
interpreter ignores SIGPIPE and SIGXFSZ itself; tests read those from a
handler that is /bin/cat /proc/self/status instead.
"""
import json
import os
import socket
import stat
import sys


def open_fds():
    names = os.listdir("/proc/self/fd")
    # The directory fd listdir used is closed again: keep what is open now.
    out = []
    for n in names:
        try:
            os.fstat(int(n))
        except OSError:
            continue
        out.append(int(n))
    return sorted(out)


def fd_info(fd):
    try:
        st = os.fstat(fd)
    except OSError as e:
        return {"error": e.strerror}
    return {"dev": st.st_dev, "ino": st.st_ino,
            "sock": stat.S_ISSOCK(st.st_mode), "fifo": stat.S_ISFIFO(st.st_mode),
            "link": os.readlink("/proc/self/fd/%d" % fd)}


def sock_names(fd):
    try:
        s = socket.socket(fileno=fd)
    except OSError as e:
        return {"error": e.strerror}
    try:
        return {"family": int(s.family), "sock": s.getsockname(), "peer": s.getpeername()}
    except OSError as e:
        return {"error": e.strerror}
    finally:
        s.detach()


def main():
    fds = open_fds()
    with open("/proc/self/environ", "rb") as f:
        environ = [v.decode("utf-8", "surrogateescape") for v in f.read().split(b"\0") if v]
    rep = {
        "argv": sys.argv[1:],
        "environ": environ,
        "fds": fds,
        "fd": {str(i): fd_info(i) for i in (0, 1, 2)},
        "conn": sock_names(0),
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "ppid": os.getppid(),
    }
    data = (json.dumps(rep) + "\n").encode()
    while data:
        data = data[os.write(1, data):]
    if "--hold" in sys.argv:
        while os.read(0, 65536):
            pass
    code = 0
    if "--exit" in sys.argv:
        code = int(sys.argv[sys.argv.index("--exit") + 1])
    sys.exit(code)


main()
