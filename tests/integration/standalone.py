"""standalone.py - acceptd binding its own listeners: IPv4, IPv6, the
default dual-stack socket, unix sockets, restart through TIME_WAIT."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acceptd_test import Daemon, case, exchange, run  # noqa: E402


@case
def echo_ipv4():
    d = Daemon(["-l", "127.0.0.1:0"])
    addr, = d.listening()
    assert addr.startswith("127.0.0.1:") and not addr.endswith(":0"), addr
    assert exchange(addr, b"hello\n") == b"hello\n"
    assert d.stop() == 0


run()
