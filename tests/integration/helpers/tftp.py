"""tftp.py - tftpd-hpa's in.tftpd and curl, the real TFTP peers of the
datagram tests: in.tftpd unpacked from the .deb tests/fetch-debs.sh
fetched (the package would start a tftp service of its own), a temporary
directory in place of /srv/tftp, and curl tftp:// fetches checked byte
for byte.  Used by readme.py (the README's examples) and superservers.py
(the shipped contrib entries); the system tier copies the same in.tftpd
into its container."""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from acceptd_test import Skip, tmpdir  # noqa: E402
from inetds import unpacked_debs  # noqa: E402

# What the README, the contrib entries and the example units name.
TFTPD = "/usr/sbin/in.tftpd"
SRV = "/srv/tftp"


def in_tftpd():
    """The unpacked in.tftpd (from the cache; Skip when its .deb is not
    in build/debs)."""
    return os.path.join(unpacked_debs("tftpd", ["tftpd-hpa"]), "usr", "sbin", "in.tftpd")


def need_curl_tftp():
    curl = shutil.which("curl")
    if not curl or "tftp" not in subprocess.run([curl, "-V"], capture_output=True,
                                                text=True).stdout:
        raise Skip("curl with tftp not installed")


def tftp_root(size=3 << 20):
    """in.tftpd, a directory for /srv/tftp holding boot.img (size random
    bytes, readable by in.tftpd's user), and that file's bytes.  Root
    only: in.tftpd chroots and drops to its user, or exits."""
    if os.geteuid() != 0:
        raise Skip("in.tftpd runs only as root")
    need_curl_tftp()
    tftpd = in_tftpd()
    srv = tmpdir()
    os.chmod(srv, 0o755)
    data = os.urandom(size)
    with open(os.path.join(srv, "boot.img"), "wb") as f:
        f.write(data)
    os.chmod(os.path.join(srv, "boot.img"), 0o644)
    return tftpd, srv, data


def tftp_fetches(port, data, times=2, host="127.0.0.1"):
    """curl fetches boot.img intact, times over, all at once."""
    def fetch():
        return subprocess.Popen(["curl", "-sS", "--max-time", "20", "-o", "-",
                                 "tftp://%s:%d/boot.img" % (host, port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs = [fetch() for _ in range(times)]
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0 and out == data, "curl: status %d, %d of %d bytes: %s" % (
            p.returncode, len(out), len(data), err.decode(errors="replace"))
