"""What the fault scripts share: a free loopback port, and a hearth server
started and waited for."""

import os
import socket
import subprocess
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_hearth(cmd, log, tries=1200):
    """Starts `cmd` (a `hearth serve` command line; its port is the one after
    --port) with its output in `log`, and waits until it lists its models.
    Returns the process and its base URL; exits if it dies or never answers."""
    port = cmd[cmd.index("--port") + 1]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(tries):
        try:
            urllib.request.urlopen(base + "/v1beta/models", timeout=2).read()
            return server, base
        except Exception:
            if server.poll() is not None:
                raise SystemExit(f"hearth exited at startup: {' '.join(cmd)}")
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"hearth did not answer: {' '.join(cmd)}")
