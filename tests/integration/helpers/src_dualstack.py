#!/usr/bin/env python3
"""src_dualstack.py - run inside a private network namespace where
net.ipv6.bindv6only=1 (see sources.py): acceptd's all-interfaces listener
must still serve IPv4 and IPv6 clients.

Prints one "ok ..." line per check and "DUALSTACK OK" at the end; any
failure raises (exit status 1, traceback on stderr).  Every acceptd it
starts is stopped by its pid before it exits.
"""
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from acceptd_test import Daemon, exchange  # noqa: E402


def check_namespace():
    with open("/proc/sys/net/ipv6/bindv6only") as f:
        assert f.read().strip() == "1", "bindv6only is not 1 in this namespace"
    # The sysctl really is in force: a plain [::] socket is IPv6-only here,
    # so a listener that serves IPv4 must have cleared IPV6_V6ONLY itself.
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    print("ok namespace has bindv6only=1", flush=True)


def both_families(args, want_port=None):
    d = Daemon(args)
    try:
        addr, = d.listening()
        assert addr.startswith("[::]:"), "not one dual-stack socket: %r\n%s" % (addr, d.log())
        port = int(addr.rsplit(":", 1)[1])
        if want_port is not None:
            assert port == want_port, addr
        got4 = exchange((socket.AF_INET, ("127.0.0.1", port)), b"four\n")
        assert got4 == b"four\n", "IPv4 client: %r\n%s" % (got4, d.log())
        got6 = exchange((socket.AF_INET6, ("::1", port)), b"six\n")
        assert got6 == b"six\n", "IPv6 client: %r\n%s" % (got6, d.log())
        rc = d.stop()
        assert rc == 0, "exit status %r\n%s" % (rc, d.log())
        print("ok %s serves 127.0.0.1 and ::1 on %s" % (" ".join(args) or "(no -l)", addr),
              flush=True)
    finally:
        Daemon.stop_all()


def _bail(sig, _frame):
    # Unwinds through the finally blocks, which stop acceptd by its pid.
    raise SystemExit("src_dualstack: signal %d" % sig)


def main():
    signal.signal(signal.SIGTERM, _bail)
    signal.signal(signal.SIGALRM, _bail)
    signal.alarm(30)
    check_namespace()
    both_families(["-l", "0"])
    both_families(["-l", "[::]:0"])
    # The default listener (8080): safe to take in a namespace of our own.
    both_families([], want_port=8080)
    print("DUALSTACK OK", flush=True)


main()
