"""A small OTLP/HTTP sink for the exporter tests (Python standard library only).

It records every request (path, headers, decompressed body) and answers as it is
told: 200 with an empty protobuf/JSON response, or a given status (400, 429 with
Retry-After, 503) for the next N requests, or a partial success. It can be stopped
("the backend goes down") and started again on the same port.
"""
import gzip
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time

from harness import SinkHTTPServer  # tests/integration, on the importer's path


def decompress(encoding, body):
    if not encoding or encoding == "identity":
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "zstd":
        if not shutil.which("zstd"):
            raise AssertionError("the zstd command is needed to check zstd bodies")
        return subprocess.run(["zstd", "-d", "-c", "-q"], input=body, check=True,
                              capture_output=True, timeout=30).stdout
    raise AssertionError(f"unexpected Content-Encoding {encoding!r}")


def varint(n):
    out = bytearray()
    while n > 127:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def partial_success_proto(rejected, message):
    """Export*ServiceResponse{partial_success{rejected_*: n, error_message}}: field 1
    of every response, whose fields 1 (count) and 2 (message) line up for all signals."""
    msg = message.encode()
    inner = b"\x08" + varint(rejected) + b"\x12" + varint(len(msg)) + msg
    return b"\x0a" + varint(len(inner)) + inner


class Sink:
    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.requests = []   # dicts: path, headers, body, at, answered
        self.script = []     # [(status, headers dict, body bytes, count)] consumed in order
        self.server = None
        self.thread = None
        self.conns = set()   # open client sockets, closed when the sink goes down
        self.port = port
        self.start()

    # ---- control -------------------------------------------------------------
    def answer_next(self, count, status, headers=None, body=b""):
        """The next `count` requests get `status` (with headers and body)."""
        with self.lock:
            self.script.append([status, headers or {}, body, count])

    def received(self, ok_only=True):
        with self.lock:
            return [r for r in self.requests if not ok_only or r["answered"] == 200]

    def start(self):
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with sink.lock:
                    sink.conns.add(self.connection)

            def finish(self):
                with sink.lock:
                    sink.conns.discard(self.connection)
                super().finish()

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                status, extra, body = 200, {}, b""
                with sink.lock:
                    if sink.script:
                        step = sink.script[0]
                        status, extra, body = step[0], step[1], step[2]
                        step[3] -= 1
                        if step[3] <= 0:
                            sink.script.pop(0)
                    sink.requests.append({
                        "path": self.path, "headers": dict(self.headers.items()),
                        "body": decompress(self.headers.get("Content-Encoding"), raw),
                        "at": time.monotonic(), "answered": status})
                ctype = self.headers.get("Content-Type", "application/x-protobuf")
                if status == 200 and not body and "json" in ctype:
                    body = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", ctype if status == 200 else
                                 extra.pop("Content-Type", "text/plain"))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = SinkHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """The backend goes down: open connections are cut and the port refuses new
        ones until start()."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def json_requests(sink):
    return [json.loads(r["body"]) for r in sink.received()]
