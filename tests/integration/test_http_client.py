#!/usr/bin/env python3
"""otlphttp's own HTTP/1.1 client (plugins/common/http_client.c, issue 10 items 4-5)
against real servers, through the binary: OTLP/JSON in -> otlp receiver -> otlphttp
(http://, compression none: the client writes the batch's bytes from its memory)
-> a scripted raw-socket HTTP/1.1 server (Python standard library) or a second
switchyard.

    test_http_client.py CASE --bin ... --plugin-dir ...

CASE is one of:
  keepalive   20 requests on one keep-alive connection (Python http.server with
              HTTP/1.1), every span once, the head as curl writes it (Host,
              User-Agent, Accept, Content-Type, the `headers:` option, Content-Length).
  close       the server closes the keep-alive connection after each answer (idle
              close), and once drops a request on a reused connection without a
              byte of answer: the request is sent again at once on a new connection
              (not after the 5 s back-off), nothing lost, nothing counted as failed.
  status      a chunked 200 with a partial success (counted, logged, the connection
              kept); 429 + Retry-After: 1 (waits ~1 s); 503 retried; 400 permanent
              (dropped, logged, counted in send_failed_spans).
  slow        a 2 MiB request to a server that reads slowly with a small receive
              buffer (partial writes): delivered whole, once.
  killed      the server resets the connection in the middle of the request body:
              retried, delivered exactly once.
  chain       router A (otlphttp, own client) -> router B (otlp receiver -> otlphttp)
              -> the server: every span once.
  timeout     the server reads a request and never answers: the attempt ends at
              `timeout` (500 ms) with curl's message, is retried on a new connection,
              delivered once.
  curl        http_client: curl forces libcurl: the same delivery, the log says so.
"""
import argparse
import http.server as hserver
import json
import os
import re
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "sinks"))
from harness import Router, free_port, http, wait_for  # noqa: E402
from http_sink import partial_success_proto  # noqa: E402

WAIT = 20.0
OWN = b"sending with the own HTTP/1.1 client"


def fail(msg):
    raise AssertionError(msg)


class RawServer:
    """HTTP/1.1 over raw sockets, one thread per connection, answering request i with
    script[i] (default "ok"): ok | close (answer, then close) | chunked_partial |
    429 | 503 | 400 | drop (read the request, close without a byte) | kill (read the
    head and 64 KiB of body, then reset)."""

    def __init__(self, script=(), rcvbuf=None, slow=False):
        self.lock = threading.Lock()
        self.script = list(script)
        self.requests = []  # complete: dict conn, path, headers, body, at, action
        self.events = []    # (action, conn, at) for every request seen, cut ones too
        self.conns = 0
        self.slow = slow
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.threads = []
        t = threading.Thread(target=self.accept_loop, daemon=True)
        t.start()

    def accept_loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
            t = threading.Thread(target=self.serve, args=(c, n), daemon=True)
            t.start()
            self.threads.append(t)

    def recv(self, c, n):
        if self.slow:
            time.sleep(0.002)
            n = min(n, 16384)
        return c.recv(n)

    def serve(self, c, conn_no):
        c.settimeout(30)
        buf = b""
        try:
            while not self.stopped:
                while b"\r\n\r\n" not in buf:
                    d = self.recv(c, 65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
                hmap = {k.lower(): v for k, v in headers}
                length = int(hmap.get("content-length", "0"))
                with self.lock:
                    action = self.script.pop(0) if self.script else "ok"
                    self.events.append((action, conn_no, time.monotonic()))
                if action == "kill":
                    while len(buf) < 65536:
                        d = self.recv(c, 65536)
                        if not d:
                            return
                        buf += d
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                while len(buf) < length:
                    d = self.recv(c, 1 << 20)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:length], buf[length:]
                if action == "drop":
                    return
                if action == "hang":  # read, never answer, until the client gives up
                    while c.recv(65536):
                        pass
                    return
                with self.lock:
                    self.requests.append({"conn": conn_no, "method": method, "path": path,
                                          "headers": headers, "body": body,
                                          "at": time.monotonic(), "action": action})
                c.sendall(self.answer(action))
                if action == "close":
                    time.sleep(0.05)
                    return
        except OSError:
            return
        finally:
            c.close()

    @staticmethod
    def answer(action):
        if action == "chunked_partial":
            p = partial_success_proto(5, "five too old")
            return (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" +
                    b"%x\r\n" % 3 + p[:3] + b"\r\n" + b"%x\r\n" % (len(p) - 3) + p[3:] +
                    b"\r\n0\r\n\r\n")
        status = {"429": b"429 Too Many Requests", "503": b"503 Service Unavailable",
                  "400": b"400 Bad Request"}.get(action, b"200 OK")
        extra = b"Retry-After: 1\r\n" if action == "429" else b""
        body = b"malformed request" if action == "400" else b""
        ctype = b"text/plain" if action == "400" else b"application/x-protobuf"
        return (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\n" + extra +
                b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def stop(self):
        self.stopped = True
        self.sock.close()

    def markers(self):
        with self.lock:
            bodies = [r["body"] for r in self.requests]
        out = []
        for b in bodies:
            out += [m.decode() for m in re.findall(rb"mark-\d+-\d+(?=;)", b)]
        return out


def traces(req_no, spans=3, pad=0):
    sp = []
    for n in range(spans):
        seq = req_no * 100 + n
        s = {"traceId": "%032x" % (0xabc000 + seq), "spanId": "%016x" % (0x5000 + seq),
             "name": "mark-%d-%d;" % (req_no, n), "kind": 1,
             "startTimeUnixNano": str(1700000000000000000 + seq),
             "endTimeUnixNano": str(1700000000000005000 + seq)}
        if pad and n == 0:
            s["attributes"] = [{"key": "pad", "value": {"stringValue": "x" * pad}}]
        sp.append(s)
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "hc"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": sp}]}]}


def send(port, req_no, **kw):
    status, _, body = http("POST", f"http://127.0.0.1:{port}/v1/traces",
                           json.dumps(traces(req_no, **kw)).encode(),
                           {"Content-Type": "application/json"}, timeout=10)
    if status != 200:
        fail(f"the router answered {status}: {body[:200]!r}")


def config(port, mport, endpoint, extra=""):
    tele = (f"    metrics:\n      address: 127.0.0.1:{mport}\n" if mport
            else "    metrics:\n      level: none\n")
    return f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  otlphttp:
    endpoint: {endpoint}
    compression: none
    headers:
      x-test-header: hello
    sending_queue:
      num_consumers: 1
{extra}service:
  telemetry:
{tele}  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"""


def metric(mport, name):
    status, _, body = http("GET", f"http://127.0.0.1:{mport}/metrics")
    assert status == 200, status
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and 'exporter="otlphttp"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def expect_marks(srv, reqs, spans=3):
    want = sorted("mark-%d-%d" % (r, n) for r in reqs for n in range(spans))
    wait_for("every span at the server", lambda: len(srv.markers()) >= len(want), WAIT)
    time.sleep(0.3)
    got = sorted(srv.markers())
    if got != want:
        fail(f"spans at the server differ: {len(got)} got, {len(want)} wanted; "
             f"missing {sorted(set(want) - set(got))[:5]}, "
             f"duplicated {[m for m in set(got) if got.count(m) > 1][:5]}")


def stop(router):
    rc = router.stop(timeout=30)
    out = router.output()
    if rc != 0:
        fail(f"router exit code {rc}:\n{out[-3000:]}")
    return out


# ---- cases -------------------------------------------------------------------------------

class KeepAliveHandler(hserver.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.seen.append((id(self.connection), self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def case_keepalive(args):
    srv = hserver.ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = free_port()
    router = Router(args.bin, [args.plugin_dir],
                    config(port, None, f"http://127.0.0.1:{srv.server_address[1]}"))
    try:
        for i in range(20):
            send(port, i)
        wait_for("20 requests", lambda: len(KeepAliveHandler.seen) >= 20, WAIT)
        out = stop(router)
    finally:
        router.kill()
        srv.shutdown()
    seen = KeepAliveHandler.seen
    marks = sorted(m.decode() for s in seen for m in re.findall(rb"mark-\d+-\d+(?=;)", s[3]))
    assert marks == sorted("mark-%d-%d" % (r, n) for r in range(20) for n in range(3)), marks
    assert len({s[0] for s in seen}) == 1, f"{len({s[0] for s in seen})} connections, not 1"
    h = {k.lower(): v for k, v in seen[0][2].items()}
    assert seen[0][1] == "/v1/traces", seen[0][1]
    assert h["host"] == f"127.0.0.1:{srv.server_address[1]}", h
    assert h["user-agent"] == "Switchyard/0.1.0", h
    assert h["accept"] == "*/*", h
    assert h["content-type"] == "application/x-protobuf", h
    assert h["x-test-header"] == "hello", h
    assert "expect" not in h and "content-encoding" not in h, h
    assert int(h["content-length"]) == len(seen[0][3]), h
    assert OWN in out.encode(), out
    print("ok: 20 requests on 1 keep-alive connection, every span once, curl's head")


def case_close(args):
    # conn 1: ok, ok(+close); conn 2: ok, drop (reused: resent at once) -> conn 3: ok ...
    srv = RawServer(["ok", "close", "ok", "drop"])
    port, mport = free_port(), free_port()
    extra = "    retry_on_failure:\n      initial_interval: 5s\n"
    router = Router(args.bin, [args.plugin_dir],
                    config(port, mport, f"http://127.0.0.1:{srv.port}", extra))
    try:
        for i in range(2):
            send(port, i)
            wait_for("request %d" % i, lambda: len(srv.requests) >= i + 1, WAIT)
        time.sleep(0.3)  # the server closed the connection: noticed while idle
        send(port, 2)
        wait_for("request 2", lambda: len(srv.requests) >= 3, WAIT)
        send(port, 3)  # dropped on the reused connection, resent on a new one
        expect_marks(srv, range(4))
        failed = metric(mport, "switchyard_exporter_send_failed_spans_total")
        out = stop(router)
    finally:
        router.kill()
        srv.stop()
    drop_at = [e[2] for e in srv.events if e[0] == "drop"][0]
    resent = srv.requests[-1]
    assert resent["conn"] == 3 and srv.conns == 3, (resent["conn"], srv.conns)
    gap = resent["at"] - drop_at
    assert gap < 2.0, f"resent after {gap:.2f} s: not at once (the back-off is 5 s)"
    assert failed == 0, failed
    assert srv.requests[1]["conn"] == 1 and srv.requests[2]["conn"] == 2, srv.requests
    print(f"ok: idle close noticed; a dropped request on a reused connection resent "
          f"after {gap * 1000:.0f} ms on a new one; nothing lost or failed")


def case_status(args):
    srv = RawServer(["chunked_partial", "ok", "429", "ok", "503", "ok", "400"])
    port, mport = free_port(), free_port()
    extra = "    retry_on_failure:\n      initial_interval: 100ms\n      max_interval: 200ms\n"
    router = Router(args.bin, [args.plugin_dir],
                    config(port, mport, f"http://127.0.0.1:{srv.port}", extra))
    try:
        send(port, 0, spans=12)
        wait_for("the partial success counted",
                 lambda: metric(mport, "switchyard_exporter_send_failed_spans_total") == 5, WAIT)
        send(port, 1)
        wait_for("request 1", lambda: len(srv.requests) >= 2, WAIT)
        send(port, 2)  # 429 + Retry-After: 1, then ok
        wait_for("request 2 retried", lambda: len(srv.requests) >= 4, WAIT)
        gap = srv.requests[3]["at"] - srv.requests[2]["at"]
        assert 0.9 <= gap < 4, f"retried after {gap:.2f} s; Retry-After said 1"
        send(port, 3)  # 503, then ok after the back-off
        wait_for("request 3 retried", lambda: len(srv.requests) >= 6, WAIT)
        send(port, 4)  # 400: dropped and counted
        wait_for("the 400 counted",
                 lambda: metric(mport, "switchyard_exporter_send_failed_spans_total") == 8, WAIT)
        time.sleep(0.5)
        sent = metric(mport, "switchyard_exporter_sent_spans_total")
        out = stop(router)
    finally:
        router.kill()
        srv.stop()
    assert len(srv.requests) == 7, f"{len(srv.requests)} requests: the 400 was retried?"
    assert [r["action"] for r in srv.requests] == ["chunked_partial", "ok", "429", "ok", "503",
                                                    "ok", "400"]
    assert srv.conns == 1, f"{srv.conns} connections: a chunked or error answer closed it"
    assert sent == 7 + 3 + 3 + 3, sent
    assert "Partial success response: 5 of 12 spans rejected: five too old" in out, out
    assert "HTTP 400" in out and "malformed request" in out, out
    assert "HTTP 429" in out and "HTTP 503" in out, out
    print(f"ok: chunked partial success counted, 429 waited {gap:.2f} s, 503 retried, 400 "
          f"dropped and counted, all on one connection")


def case_slow(args):
    srv = RawServer(rcvbuf=4096, slow=True)
    port = free_port()
    router = Router(args.bin, [args.plugin_dir],
                    config(port, None, f"http://127.0.0.1:{srv.port}",
                           "    timeout: 30s\n"))
    try:
        send(port, 0, pad=2 << 20)
        send(port, 1)
        expect_marks(srv, range(2))
        out = stop(router)
    finally:
        router.kill()
        srv.stop()
    big = srv.requests[0]["body"]
    assert len(big) > (2 << 20), len(big)
    assert big.count(b"x" * 4096) >= 500, "the padding is not whole"
    assert OWN in out.encode(), out
    print(f"ok: a {len(big)}-byte request written in partial writes to a slow reader, whole")


def case_killed(args):
    srv = RawServer(["kill"])
    port, mport = free_port(), free_port()
    extra = "    retry_on_failure:\n      initial_interval: 100ms\n"
    router = Router(args.bin, [args.plugin_dir],
                    config(port, mport, f"http://127.0.0.1:{srv.port}", extra))
    try:
        send(port, 0, pad=1 << 20)
        send(port, 1)
        expect_marks(srv, range(2))
        failed = metric(mport, "switchyard_exporter_send_failed_spans_total")
        out = stop(router)
    finally:
        router.kill()
        srv.stop()
    assert srv.events[0][0] == "kill", srv.events
    assert failed == 0, failed
    assert "Post \"http://127.0.0.1:%d/v1/traces\"" % srv.port in out, out
    print("ok: a request cut by a reset mid-body was retried and delivered once")


def case_chain(args):
    srv = RawServer()
    a_port, b_port = free_port(), free_port()
    router_b = Router(args.bin, [args.plugin_dir],
                      config(b_port, None, f"http://127.0.0.1:{srv.port}"))
    router_a = None
    try:
        router_a = Router(args.bin, [args.plugin_dir],
                          config(a_port, None, f"http://127.0.0.1:{b_port}"))
        for i in range(30):
            send(a_port, i)
        expect_marks(srv, range(30))
        out_a = stop(router_a)
        out_b = stop(router_b)
    finally:
        if router_a:
            router_a.kill()
        router_b.kill()
        srv.stop()
    assert OWN in out_a.encode() and OWN in out_b.encode()
    assert "Exporting failed" not in out_a + out_b, out_a + out_b
    print("ok: router A -> router B -> server, 30 requests, every span once")


def case_timeout(args):
    srv = RawServer(["hang"])
    port, mport = free_port(), free_port()
    extra = "    timeout: 500ms\n    retry_on_failure:\n      initial_interval: 100ms\n"
    router = Router(args.bin, [args.plugin_dir],
                    config(port, mport, f"http://127.0.0.1:{srv.port}", extra))
    try:
        send(port, 0)
        expect_marks(srv, range(1))
        retries = metric(mport, "switchyard_exporter_retries_total")
        out = stop(router)
    finally:
        router.kill()
        srv.stop()
    hang_at = srv.events[0][2]
    gap = srv.requests[0]["at"] - hang_at
    assert srv.events[0][0] == "hang" and srv.requests[0]["conn"] == 2, srv.events
    assert 0.45 <= gap < 5, f"retried {gap:.2f} s after the request; timeout is 500 ms"
    assert re.search(r"Operation timed out after \d+ milliseconds with 0 bytes received", out), out
    assert retries == 1, retries
    print(f"ok: an unanswered request timed out and was retried {gap:.2f} s later, once")


def case_curl(args):
    srv = RawServer()
    port = free_port()
    router = Router(args.bin, [args.plugin_dir],
                    config(port, None, f"http://127.0.0.1:{srv.port}",
                           "    http_client: curl\n"))
    try:
        for i in range(5):
            send(port, i)
        expect_marks(srv, range(5))
        out = stop(router)
    finally:
        router.kill()
        srv.stop()
    assert b"sending with libcurl" in out.encode(), out
    print("ok: http_client: curl sends with libcurl")


CASES = {"keepalive": case_keepalive, "close": case_close, "status": case_status,
         "slow": case_slow, "killed": case_killed, "chain": case_chain, "timeout": case_timeout,
         "curl": case_curl}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()
    CASES[args.case](args)


if __name__ == "__main__":
    main()
