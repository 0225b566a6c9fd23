#!/usr/bin/python3
"""notify-recv.py SOCKET OUT: stand in for systemd's notification socket.

Binds a Unix datagram socket at SOCKET (mode 0666: the daemon under test
runs as another user), and appends each sd_notify(3) message it receives to
OUT, one assignment per line, until SIGTERM.
"""
import os
import signal
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        for line in msg.splitlines():
            f.write(line + "\n")
