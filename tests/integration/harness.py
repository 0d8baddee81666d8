"""Shared pieces of the integration tests: free ports, HTTP calls, starting and
stopping the real switchyard binary with a temporary configuration, and bounded
waits. Python standard library only."""
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 30.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=5.0):
    """Returns (status, headers, body bytes); HTTP error statuses are answers too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def wait_for(what, fn, timeout):
    """Calls fn() until it returns a true value; raises after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Router:
    """The real binary on a temporary config; output goes to a file we can read."""

    def __init__(self, binary, plugin_dirs, config_text):
        self.dir = tempfile.mkdtemp(prefix="sy-it-")
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.dir, "output.log")
        self.log = open(self.log_path, "wb")
        args = [binary, "--config", self.config]
        for d in plugin_dirs:
            args += ["--plugin-dir", d]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("the router to be ready",
                 lambda: self._check_alive() and b"Everything is ready" in self.output_bytes(),
                 STARTUP_TIMEOUT)

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"router exited with {self.proc.returncode}:\n{self.output()}")
        return True

    def output_bytes(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def output(self):
        return self.output_bytes().decode("utf-8", "replace")

    def stop(self, timeout=EXIT_TIMEOUT):
        """SIGTERM, then wait; returns the exit code (kills after the timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"router did not exit within {timeout}s:\n{self.output()}")
        self.log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
