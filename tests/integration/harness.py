"""Shared pieces of the integration tests: free ports, HTTP calls, starting and
stopping the real switchyard binary with a temporary configuration, bounded
waits, soft checks, and OTLP request bodies (JSON, and a tiny protobuf writer).
Python standard library only."""
import json
import os
import shutil
import signal
import http.server
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 30.0


class SinkHTTPServer(http.server.ThreadingHTTPServer):
    """The HTTP server of the tests' sinks. socketserver's default listen backlog of 5
    overflows when an exporter has many requests in flight: a connection then waits
    for a SYN retransmission and the exporter's timeout may pass while the body is
    still recorded here, so that its retry shows as a duplicate."""
    request_queue_size = 256
    daemon_threads = True


_handed_out = set()


def free_port():
    """A port free on 127.0.0.1 now, never one this process was given before (the
    kernel may hand the same ephemeral port to two binds in a row once the first
    socket is closed, and a test that asks for several ports at once would then
    start two servers on one)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port on 127.0.0.1 after 100 tries")


def http(method, url, body=None, headers=None, timeout=5.0):
    """Returns (status, headers, body bytes); HTTP error statuses are answers too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post_json(url, obj, timeout=5.0):
    """POSTs obj as OTLP/JSON; returns (status, headers, body bytes) as http()."""
    return http("POST", url, json.dumps(obj).encode(), {"Content-Type": "application/json"},
                timeout)


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
    """The real binary on a temporary config; output goes to a file we can read.

    With wait=True (the default) the constructor returns once the router logged
    "Everything is ready" and raises AssertionError (after killing it) otherwise;
    with wait=False the caller decides, through wait_ready(). Used as a context
    manager, the process is killed and the temporary directory removed on exit."""

    def __init__(self, binary, plugin_dirs, config_text, wait=True, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="sy-it-")
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.dir, "output.log")
        self.log = open(self.log_path, "wb")
        args = [binary, "--config", self.config, *extra_args]
        for d in plugin_dirs:
            args += ["--plugin-dir", d]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait and not self.wait_ready():
            exited = self.proc.poll()
            self.kill()
            if exited is not None:
                raise AssertionError(f"router exited with {exited}:\n{self.output()}")
            raise AssertionError(f"timed out waiting for the router to be ready "
                                 f"({STARTUP_TIMEOUT}s):\n{self.output()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def wait_ready(self, timeout=STARTUP_TIMEOUT):
        """True once the ready line is out; False if the process exits first or the
        timeout passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"Everything is ready" in self.output_bytes():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def output_bytes(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def output(self):
        return self.output_bytes().decode("utf-8", "replace")

    def lines(self):
        """The complete lines written so far; a last line without its newline only
        once the process has exited (until then it may be half written)."""
        done = self.proc.poll() is not None
        text = self.output()
        lines = text.split("\n")
        tail = lines.pop()
        if done and tail:
            lines.append(tail)
        return lines

    def wait_output(self, what, predicate, timeout):
        """Waits until predicate(lines()) is true; returns those lines, or None (with a
        note on stderr) when the timeout passes or the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if predicate(lines):
                return lines
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        print("timed out waiting for %s" % what, file=sys.stderr)
        return None

    def dump(self, n=200, prefix=""):
        """The last n lines of output, to stderr."""
        for line in self.lines()[-n:]:
            print(prefix + line, file=sys.stderr)

    def terminate(self, timeout=EXIT_TIMEOUT):
        """SIGTERM, then wait; returns the exit code, or None when the process had to
        be killed after the timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.log.close()
        return rc

    def stop(self, timeout=EXIT_TIMEOUT):
        """SIGTERM, then wait; returns the exit code (kills after the timeout)."""
        rc = self.terminate(timeout)
        if rc is None:
            raise AssertionError(f"router did not exit within {timeout}s:\n{self.output()}")
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def cleanup(self):
        """Kills the process if it still runs and removes the temporary directory."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Checks:
    """Soft assertions: check(cond, what) prints ok/FAIL and collects the failures,
    so that one run reports every broken check."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        if cond:
            print("ok   " + what)
        else:
            print("FAIL " + what)
            self.failures.append(what)
        return cond


# --- OTLP/JSON bodies --------------------------------------------------------

TRACE_ID_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_ID_HEX = "eee19b7ec3c1b174"
START_NS = 1544712660000000000
END_NS = 1544712661000000000


def json_span(name, trace_id=TRACE_ID_HEX, span_id=SPAN_ID_HEX, start_ns=START_NS,
              end_ns=END_NS, kind=2, attributes=None):
    """One span of an OTLP/JSON request; attributes are OTLP/JSON key-value objects."""
    span = {"traceId": trace_id, "spanId": span_id, "name": name, "kind": kind,
            "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns)}
    if attributes is not None:
        span["attributes"] = attributes
    return span


def json_traces(spans, service, scope="test"):
    """An ExportTraceServiceRequest of one resource (service.name) and one scope."""
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": scope}, "spans": spans}],
    }]}


# --- a tiny protobuf writer and reader ----------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_len(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_fixed64(num, v):
    return varint(num << 3 | 1) + struct.pack("<Q", v)


def field_double(num, v):
    return varint(num << 3 | 1) + struct.pack("<d", v)


def read_varint(data, i):
    """Decodes the varint at data[i]; returns (value, index after it)."""
    shift = v = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


# --- a real Prometheus server (Debian's /usr/bin/prometheus) -------------------------

class Prometheus:
    """Prometheus on 127.0.0.1:<free port> with `config_text` and its storage in
    `workdir`; ready() waits (bounded) for /-/ready, query() asks the HTTP API,
    stop(check) sends SIGTERM, checks the exit code 0 and prints the end of its
    log when that or `show_log` says something went wrong."""

    READY_TIMEOUT = 60.0

    @staticmethod
    def missing(binary):
        """True, with a line saying how to install it, when `binary` is not there."""
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return False
        print(f"FAIL {binary} is missing: install it with `apt-get install prometheus` "
              f"(deploy/debian-deps.sh --test does)", file=sys.stderr)
        return True

    def __init__(self, binary, workdir, config_text, extra_args=()):
        self.port = free_port()
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(workdir, "prometheus.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.port}", *extra_args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}")
            status, _, _ = http("GET", f"http://127.0.0.1:{self.port}/-/ready", timeout=2.0)
            return status == 200
        wait_for("Prometheus to be ready", up, self.READY_TIMEOUT)

    def query(self, query, at=None):
        """The result list of an instant query (at `at` seconds), or None."""
        import urllib.parse
        params = {"query": query}
        if at is not None:
            params["time"] = str(at)
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(params)
        status, _, body = http("GET", url, timeout=5.0)
        if status != 200:
            print(f"query {query!r}: {status} {body[:300]!r}", file=sys.stderr)
            return None
        doc = json.loads(body)
        return doc["data"]["result"] if doc.get("status") == "success" else None

    def stop(self, check, show_log=False):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.log.close()
        check(rc == 0, f"Prometheus stops on SIGTERM ({rc})")
        if rc != 0 or show_log:
            with open(self.log_path, "rb") as f:
                sys.stderr.write(f.read().decode("utf-8", "replace")[-4000:])
