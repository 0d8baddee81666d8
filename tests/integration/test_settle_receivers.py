#!/usr/bin/env python3
"""zipkin and jaeger thrift_http answer only after the durable write (issue 11
item 3): settle tokens as the otlp receiver uses them (settle_wait.h).

zipkin receiver (POST /api/v2/spans, JSON), jaeger receiver (thrift_http, POST
/api/traces, Thrift binary Batch) or jaeger receiver (grpc, PostSpans through curl
--http2-prior-knowledge; grpc-status OK read as 202, UNAVAILABLE as 503,
RESOURCE_EXHAUSTED as 429) -> otlphttp exporter (OTLP/JSON) with
`sending_queue.storage: file_storage`, its backend (tests/integration/sinks) down:

  crash    4 client threads send 50-span requests with unique span ids; kill -9
           once 1,000+ spans were acknowledged (202); restart with the backend up:
           every acknowledged span is delivered (0 lost), nothing unknown arrives.
  timeout  queue_size 500 items, settle_timeout 500ms: once the persistent queue
           is full a request waits 500 ms and gets 503 + Retry-After, never 202,
           counted in receiver_*_settle_timeouts; every 202 is on the disk.
  client   (jaeger) the real jaeger-client 3.19.0 HTTPSender (npm, node_jaeger, set
           up by integration.jaeger.setup) sends its spans; it reports no error
           (it got 202, after the durable write); kill -9 right after; restart:
           every span it sent is delivered, by span id.

    test_settle_receivers.py --bin B --plugin-dir D [--node-dir N] {zipkin,jaeger,jaeger_grpc}
                             {crash,timeout,client}

The requests are built here (Zipkin v2 JSON; a Thrift binary-protocol Batch with
the fields of jaeger.thrift) so that every span carries an id the test chose and
each request's answer is known; the real Zipkin and Jaeger clients are exercised
against the same endpoints by test_zipkin.py and test_jaeger.py.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "sinks"))
from harness import Router, free_port, http, wait_for  # noqa: E402
from http_sink import Sink  # noqa: E402
from test_persistent_queue import delivered_ids, sample, scrape  # noqa: E402

SPANS = 50
WAIT = 20.0
TRACE = 0x0102030405060708090A0B0C0D0E0F10


def zipkin_body(first, n):
    return json.dumps([{"traceId": "%032x" % TRACE, "id": "%016x" % (first + i),
                        "name": "settle", "timestamp": 1700000000000000 + i, "duration": 10,
                        "localEndpoint": {"serviceName": "zipkin-settle"}}
                       for i in range(n)]).encode()


def _f(ftype, fid):
    return struct.pack(">bh", ftype, fid)


def _s(v):
    v = v.encode()
    return struct.pack(">i", len(v)) + v


def jaeger_body(first, n):
    """A jaeger.thrift Batch in the binary protocol: Process{serviceName}, spans."""
    spans = b""
    for i in range(n):
        spans += (_f(10, 1) + struct.pack(">q", TRACE & 0x7FFFFFFFFFFFFFFF) +
                  _f(10, 2) + struct.pack(">q", TRACE >> 64) +
                  _f(10, 3) + struct.pack(">q", first + i) +
                  _f(10, 4) + struct.pack(">q", 0) +
                  _f(11, 5) + _s("settle") +
                  _f(8, 7) + struct.pack(">i", 1) +
                  _f(10, 8) + struct.pack(">q", 1700000000000000 + i) +
                  _f(10, 9) + struct.pack(">q", 10) + b"\x00")
    return (_f(12, 1) + _f(11, 1) + _s("jaeger-settle") + b"\x00" +
            _f(15, 2) + struct.pack(">bi", 12, n) + spans + b"\x00")


def _pb_len(num, payload):
    return _pb_varint((num << 3) | 2) + _pb_varint(len(payload)) + payload


def _pb_varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def jaeger_grpc_body(first, n):
    """A jaeger.api_v2 PostSpansRequest{batch: Batch{spans, process}} (model.proto)."""
    spans = b""
    for i in range(n):
        start = _pb_varint((1 << 3) | 0) + _pb_varint(1700000000) + \
            _pb_varint((2 << 3) | 0) + _pb_varint(i)  # Timestamp{seconds, nanos}
        span = (_pb_len(1, TRACE.to_bytes(16, "big")) + _pb_len(2, (first + i).to_bytes(8, "big"))
                + _pb_len(3, b"settle") + _pb_len(6, start)
                + _pb_len(7, _pb_varint((2 << 3) | 0) + _pb_varint(10000)))  # Duration{nanos}
        spans += _pb_len(1, span)
    batch = spans + _pb_len(2, _pb_len(1, b"jaeger-grpc-settle"))
    return _pb_len(1, batch)


KINDS = {
    "zipkin": {"path": "/api/v2/spans", "ctype": "application/json", "body": zipkin_body,
               "timeouts": "switchyard_receiver_zipkin_settle_timeouts_total"},
    "jaeger": {"path": "/api/traces", "ctype": "application/x-thrift", "body": jaeger_body,
               "timeouts": "switchyard_receiver_jaeger_thrift_http_settle_timeouts_total"},
    # gRPC PostSpans through curl --http2-prior-knowledge; its grpc-status is read as
    # the HTTP receivers' answers: OK as 202, UNAVAILABLE as 503, RESOURCE_EXHAUSTED
    # as 429 (send()).
    "jaeger_grpc": {"path": "/jaeger.api_v2.CollectorService/PostSpans",
                    "body": jaeger_grpc_body,
                    "timeouts": "switchyard_receiver_jaeger_grpc_settle_timeouts_total"},
}
GRPC_AS_HTTP = {0: 202, 14: 503, 8: 429}


def receiver_yaml(kind, port, settle_timeout):
    if kind == "zipkin":
        return f"""  zipkin:
    endpoint: 127.0.0.1:{port}
    settle_timeout: {settle_timeout}
"""
    if kind == "jaeger_grpc":
        return f"""  jaeger:
    settle_timeout: {settle_timeout}
    protocols:
      grpc:
        endpoint: 127.0.0.1:{port}
"""
    return f"""  jaeger:
    settle_timeout: {settle_timeout}
    protocols:
      thrift_http:
        endpoint: 127.0.0.1:{port}
"""


def config(kind, port, mport, sink_port, directory, queue_size, settle_timeout):
    return f"""extensions:
  file_storage:
    directory: {directory}
receivers:
{receiver_yaml(kind, port, settle_timeout)}exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sink_port}
    encoding: json
    compression: none
    sending_queue:
      storage: file_storage
      sizer: items
      queue_size: {queue_size}
      num_consumers: 4
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 300ms
      max_elapsed_time: 0s
service:
  extensions: [file_storage]
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [{kind.split("_")[0]}]
      exporters: [otlphttp]
"""


class Setup:
    def __init__(self, args, queue_size=1000000, settle_timeout="2s"):
        self.args, self.kind = args, args.kind
        self.k = KINDS[args.kind]
        self.tmp = tempfile.mkdtemp(prefix="sy-settle-")
        self.dir = os.path.join(self.tmp, "storage")
        os.mkdir(self.dir)
        self.port, self.mport = free_port(), free_port()
        self.sink = Sink()
        self.sink_port = self.sink.port
        self.sink.stop()  # the backend is down
        self.queue_size, self.settle_timeout = queue_size, settle_timeout
        self.router = None

    def start(self):
        self.router = Router(self.args.bin, [self.args.plugin_dir],
                             config(self.kind, self.port, self.mport, self.sink_port, self.dir,
                                    self.queue_size, self.settle_timeout))

    def send(self, first, timeout=5.0):
        if self.kind == "jaeger_grpc":
            return self.send_grpc(first, timeout)
        try:
            status, _, _ = http("POST", f"http://127.0.0.1:{self.port}{self.k['path']}",
                                self.k["body"](first, SPANS),
                                {"Content-Type": self.k["ctype"]}, timeout=timeout)
            return status
        except OSError:
            return 0

    def send_grpc(self, first, timeout):
        frame = b"\x00" + len(body := self.k["body"](first, SPANS)).to_bytes(4, "big") + body
        cmd = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", str(timeout), "-X", "POST",
               "-H", "content-type: application/grpc", "-H", "te: trailers",
               "--data-binary", "@-", "-D", "-", "-o", os.devnull,
               f"http://127.0.0.1:{self.port}{self.k['path']}"]
        try:
            out = subprocess.run(cmd, input=frame, capture_output=True, timeout=timeout + 5)
        except (OSError, subprocess.TimeoutExpired):
            return 0
        for line in out.stdout.decode("latin-1").splitlines():
            k, sep, v = line.partition(":")
            if sep and k.strip().lower() == "grpc-status":
                code = int(v.strip())
                return GRPC_AS_HTTP.get(code, 1000 + code)
        return 0

    def metric(self, name, label=""):
        return sample(scrape(self.mport), name, label)

    def queued(self):
        return self.metric("switchyard_exporter_queue_size", 'exporter="otlphttp"')

    def restart_and_collect(self):
        self.sink = Sink(port=self.sink_port)
        self.start()
        wait_for("the recovered queue to drain", lambda: self.queued() == 0, 2 * WAIT)
        time.sleep(0.3)
        return delivered_ids(self.sink)

    def cleanup(self):
        if self.router:
            self.router.cleanup()
        self.sink.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok   " + what, flush=True)


def case_crash(args):
    s = Setup(args)
    try:
        s.start()
        sent, acked, statuses, lock = set(), set(), {}, threading.Lock()
        stop = threading.Event()

        def sender(k):
            for i in range(200):
                if stop.is_set():
                    return
                first = (k << 32) | (i * SPANS)
                with lock:
                    sent.update(range(first, first + SPANS))
                st = s.send(first, timeout=3.0)
                with lock:
                    statuses[st] = statuses.get(st, 0) + 1
                    if st == 202:
                        acked.update(range(first, first + SPANS))
                if st == 0 and stop.is_set():
                    return

        ts = [threading.Thread(target=sender, args=(k,)) for k in range(1, 5)]
        for t in ts:
            t.start()
        wait_for("load", lambda: len(acked) >= 1000 or not any(t.is_alive() for t in ts), WAIT)
        stop.set()
        s.router.kill()  # kill -9 with requests in flight
        for t in ts:
            t.join(30)
        expect(acked, f"spans were acknowledged before the kill ({statuses})")
        ids = s.restart_and_collect()
        got = set(ids)
        lost = acked - got
        print(f"settle.{s.kind}.crash: sent={len(sent)} acknowledged={len(acked)} "
              f"delivered={len(got)} lost={len(lost)} duplicates={len(ids) - len(got)} "
              f"delivered_unacknowledged={len(got - acked)} statuses={statuses}", flush=True)
        expect(got <= sent, "nothing at the sink that was never sent")
        expect(not lost, f"0 acknowledged spans lost after kill -9 ({len(lost)})")
        expect(s.router.stop() == 0, "the restarted router exits 0")
    finally:
        s.cleanup()


def case_timeout(args):
    s = Setup(args, queue_size=500, settle_timeout="500ms")
    try:
        s.start()
        want, statuses, slow = set(), {}, []
        for i in range(40):
            first = (1 << 32) | (i * SPANS)
            t0 = time.monotonic()
            st = s.send(first)
            statuses[st] = statuses.get(st, 0) + 1
            if st == 202:
                want.update(range(first, first + SPANS))
            elif st == 503:
                slow.append(time.monotonic() - t0)
            elif st != 429:
                raise AssertionError(f"unexpected status {st}")
            if statuses.get(503, 0) + statuses.get(429, 0) >= 4:
                break
        timeouts = s.metric(KINDS[s.kind]["timeouts"]) or 0
        persisted = s.queued()
        print(f"settle.{s.kind}.timeout: acknowledged={len(want)} persisted={persisted:.0f} "
              f"statuses={statuses} settle_timeouts={timeouts:.0f} "
              f"waits_before_503_s={[round(x, 2) for x in slow]}", flush=True)
        expect(statuses.get(503, 0) >= 2, "503 once the persistent queue is full")
        expect(all(x >= 0.45 for x in slow), "each 503 came after settle_timeout (500 ms)")
        expect(timeouts >= 2, "counted in the receiver's settle_timeouts")
        expect(persisted == len(want), f"every 202 is on the disk ({persisted:.0f} = {len(want)})")
        s.router.kill()
        ids = s.restart_and_collect()
        expect(want <= set(ids), "every acknowledged span is delivered after kill -9")
        expect(s.router.stop() == 0, "the router exits 0")
    finally:
        s.cleanup()


def case_client(args):
    if args.kind != "jaeger" or not args.node_dir:
        raise AssertionError("the client case is jaeger's, with --node-dir")
    s = Setup(args)
    try:
        s.start()
        try:
            out = subprocess.run(
                ["node", "send.js", "client-http", f"http://127.0.0.1:{s.port}/api/traces"],
                cwd=args.node_dir, capture_output=True, text=True, timeout=60,
                stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise AssertionError("node is not installed (deploy/debian-deps.sh --test)")
        expect(out.returncode == 0, f"node send.js client-http ran ({out.stderr[-300:]})")
        man = json.loads(out.stdout.strip().splitlines()[-1])
        sent = {int(sp["spanId"], 16) for sp in man["spans"]}
        expect(len(sent) == 4 and not man["errors"],
               f"jaeger-client sent {len(sent)} spans and reports no error: it got 202 "
               f"({man['errors']})")
        s.router.kill()  # kill -9 right after the client's answer
        got = set(s.restart_and_collect())
        print(f"settle.jaeger.client: sent={len(sent)} delivered_after_kill9={len(got & sent)}",
              flush=True)
        expect(sent <= got, "every span jaeger-client was told was accepted is delivered "
                            "after kill -9 and a restart")
        expect(s.router.stop() == 0, "the restarted router exits 0")
    finally:
        s.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--node-dir")
    ap.add_argument("kind", choices=sorted(KINDS))
    ap.add_argument("case", choices=["crash", "timeout", "client"])
    args = ap.parse_args()
    t0 = time.monotonic()
    {"crash": case_crash, "timeout": case_timeout, "client": case_client}[args.case](args)
    print(f"settle.{args.kind}.{args.case} passed in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
