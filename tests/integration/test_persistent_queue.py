#!/usr/bin/env python3
"""The persistent sending queue (file_storage + sending_queue.storage) across kill -9.

otlp receiver (OTLP/HTTP) -> no processor -> otlphttp exporter (OTLP/JSON, no
compression) with `sending_queue.storage: file_storage`, the backend (the Python
sink of tests/integration/sinks) down:

  persisted  N spans with unique ids, wait until exporter_queue_size shows all N in
             the persistent queue, kill -9, restart with the backend up: every span
             arrives, by id; 0 lost; duplicates counted (bounded by the records the
             first run had handed out).
  crash      load from 4 client threads, kill -9 in the middle of it, restart,
             backend up: acknowledged, delivered, lost, duplicated are printed;
             delivered is a subset of sent; lost <= the in-flight window measured
             (what the core's in-memory queues held, sampled during the load).
  corrupt    one byte of a record changed and the last record cut short: the
             router starts, skips both, counts them, delivers the rest exactly.
  duplicates the backend takes the 4 consumers' requests but the router is killed
             before it answers: after the restart only those come twice, bounded
             by (and counted in) redelivered_records.
  sigterm    SIGTERM with the backend down: exit 0, the queue stays on the disk; the
             next run delivers every span exactly once.
  config     directory missing, not a directory, not writable (when not root), the
             storage id unknown, a second router on the same directory: clear errors.
  disk       a "full disk": the router under RLIMIT_FSIZE (256 KiB) with SIGXFSZ
             ignored, so appends fail with EFBIG: 429 to the client, nothing
             acknowledged lost, and appends resume once the segment is confirmed.
  full       a small queue_size (items): the client gets 429 once the bound (and the
             core's queues) are full; every span acknowledged arrives, none refused.

    test_persistent_queue.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
"""
import argparse
from http.server import BaseHTTPRequestHandler
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sinks"))

from harness import Router, free_port, http, wait_for  # noqa: E402
from http_sink import Sink  # noqa: E402

SPANS_PER_REQ = 50
WAIT = 20.0


def request_body(first_id, n, name="pq"):
    spans = [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "%016x" % (first_id + i),
              "name": name, "kind": 1, "startTimeUnixNano": "1700000000000000000",
              "endTimeUnixNano": "1700000000000001000"} for i in range(n)]
    return json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}
                      ).encode()


def send(port, first_id, n=SPANS_PER_REQ, timeout=5.0, name="pq"):
    """POSTs n spans with ids first_id.. ; returns the HTTP status (0: no answer)."""
    try:
        status, _, _ = http("POST", f"http://127.0.0.1:{port}/v1/traces",
                            request_body(first_id, n, name), {"Content-Type": "application/json"},
                            timeout=timeout)
        return status
    except OSError:
        return 0


def ids_of_body(raw):
    out = []
    body = json.loads(raw)
    for rs in body.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                out.append(int(sp["spanId"], 16))
    return out


def delivered_ids(sink):
    """Every span id the sink accepted, in order, repeats included."""
    out = []
    for r in sink.received():
        out += ids_of_body(r["body"])
    return out


def scrape(port):
    try:
        status, _, body = http("GET", f"http://127.0.0.1:{port}/metrics", timeout=2.0)
    except OSError:
        return ""
    return body.decode() if status == 200 else ""


def sample(text, name, label=""):
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def config(port, mport, sink_port, directory, queue_size=1000000, storage="file_storage",
           extra_fs="", grpc_port=None, processors=None, memory_sink_port=None,
           settle_timeout="1s"):
    """processors: None, or (YAML of the processors section, [their names]).
    memory_sink_port: a second otlphttp exporter, without storage, to that port."""
    grpc = f"""      grpc:
        endpoint: 127.0.0.1:{grpc_port}
""" if grpc_port else ""
    procs_section, procs_list = "", ""
    if processors:
        procs_section = "processors:\n" + processors[0]
        procs_list = f"      processors: [{', '.join(processors[1])}]\n"
    exporters = "otlphttp"
    memory = ""
    if memory_sink_port:
        exporters = "otlphttp, otlphttp/memory"
        memory = f"""  otlphttp/memory:
    endpoint: http://127.0.0.1:{memory_sink_port}
    encoding: json
    compression: none
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 300ms
"""
    return f"""
extensions:
  file_storage:
    directory: {directory}
{extra_fs}receivers:
  otlp:
    settle_timeout: {settle_timeout}
    protocols:
{grpc}      http:
        endpoint: 127.0.0.1:{port}
{procs_section}exporters:
{memory}
  otlphttp:
    endpoint: http://127.0.0.1:{sink_port}
    encoding: json
    compression: none
    sending_queue:
      storage: {storage}
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
      receivers: [otlp]
{procs_list}      exporters: [{exporters}]
"""


class Setup:
    def __init__(self, args, queue_size=1000000, **cfg):
        self.args = args
        self.cfg = cfg
        self.tmp = tempfile.mkdtemp(prefix="sy-pq-")
        self.dir = os.path.join(self.tmp, "storage")
        os.mkdir(self.dir)
        self.port, self.mport, self.grpc_port = free_port(), free_port(), free_port()
        self.sink = Sink()
        self.sink_port = self.sink.port
        self.sink.stop()  # the backend is down
        self.hold_port()
        self.queue_size = queue_size
        self.router = None

    def start(self, binary=None):
        self.router = Router(binary or self.args.bin, [self.args.plugin_dir],
                             config(self.port, self.mport, self.sink_port, self.dir,
                                    self.queue_size, grpc_port=self.grpc_port, **self.cfg))
        return self.router

    def metric(self, name, label='exporter="otlphttp"'):
        return sample(scrape(self.mport), name, label)

    def hold_port(self):
        """While the backend is down its port stays bound, not listening: a connect is
        refused, and no other socket gets the port meanwhile (not even the
        exporter's own connect, whose local port could otherwise be the same one:
        a TCP self-connect that answers the request with itself)."""
        self.placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.placeholder.bind(("127.0.0.1", self.sink_port))

    def backend_up(self):
        if self.placeholder:
            self.placeholder.close()
            self.placeholder = None
        self.sink = Sink(port=self.sink_port)

    def cleanup(self):
        if self.router:
            self.router.cleanup()
        self.sink.stop()
        if self.placeholder:
            self.placeholder.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def queue_items(s):
    return s.metric("switchyard_exporter_queue_size")


def wait_delivered(s, expect_unique, timeout=WAIT):
    """Waits until the sink has expect_unique distinct ids and the exporter's queue is
    empty; returns the delivered ids (repeats included)."""
    def done():
        ids = delivered_ids(s.sink)
        return len(set(ids)) >= expect_unique and queue_items(s) == 0
    wait_for(f"{expect_unique} spans at the sink", done, timeout)
    time.sleep(0.3)  # anything sent twice arrives too
    return delivered_ids(s.sink)


def fill(s, n_req):
    """Sends n_req requests (all must be acknowledged) and waits until their spans are
    all in the persistent queue; returns the number of spans."""
    for i in range(n_req):
        st = send(s.port, i * SPANS_PER_REQ)
        assert st == 200, f"request {i}: status {st}"
    n = n_req * SPANS_PER_REQ
    seen = []

    def full():
        seen.append(queue_items(s))
        return seen[-1] == n

    try:
        wait_for(f"{n} spans in the persistent queue", full, WAIT)
    except AssertionError as e:
        raise AssertionError(f"{e}; queue sizes seen: {sorted(set(map(str, seen)))[:10]}")
    return n


def send_until_refused(s, max_requests):
    """Sends requests until three are refused (429/503); returns the spans of those
    acknowledged, the number refused and the statuses seen (s.sent: every span sent)."""
    want, refused, statuses = set(), 0, set()
    s.sent = set()
    for i in range(max_requests):
        if refused >= 3:
            break
        s.sent.update(range(i * SPANS_PER_REQ, (i + 1) * SPANS_PER_REQ))
        st = send(s.port, i * SPANS_PER_REQ)
        statuses.add(st)
        if st == 200:
            want.update(range(i * SPANS_PER_REQ, (i + 1) * SPANS_PER_REQ))
        elif st in (429, 503):
            refused += 1
        else:
            raise AssertionError(f"unexpected status {st}")
    return want, refused, statuses


def check_refused_delivery(s, ids, want):
    """Every acknowledged span delivered exactly once; beyond them only spans of
    refused requests (503: written after all, which the client's retry would
    duplicate), each once."""
    time.sleep(0.5)
    ids = delivered_ids(s.sink)
    got = set(ids)
    assert want <= got, f"{len(want - got)} acknowledged spans lost"
    assert got <= s.sent, "the sink got spans that were never sent"
    assert len(ids) == len(got), "duplicates"


def segments(directory):
    out = []
    for root, _, files in os.walk(directory):
        out += [os.path.join(root, f) for f in files if f.startswith("seg-")]
    return sorted(out)


def records(path):
    """(offset, total length, id) of each whole record of a segment file."""
    data = open(path, "rb").read()
    out, pos = [], 0
    while pos + 24 <= len(data):
        ln, _crc, rid = struct.unpack_from("<IIQ", data, pos)
        if pos + 8 + ln > len(data):
            break
        out.append((pos, 8 + ln, rid))
        pos += 8 + ln
    return out



# ---- a minimal OTLP/gRPC client (h2c, prior knowledge; python3 standard library) --------

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _pb_len(num, payload):
    out, n = bytearray([(num << 3) | 2]), len(payload)
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def trace_request_pb(first_id, n, name="pq"):
    spans = b"".join(
        _pb_len(2, _pb_len(1, bytes.fromhex("0102030405060708090a0b0c0d0e0f10"))
                + _pb_len(2, (first_id + i).to_bytes(8, "big")) + _pb_len(5, name.encode())
                + b"\x30\x01" + b"\x39" + struct.pack("<Q", 1700000000000000000)
                + b"\x41" + struct.pack("<Q", 1700000000000001000))
        for i in range(n))
    return _pb_len(1, _pb_len(2, spans))


def _hpack_literal(name, value):
    # Literal header field without indexing, new name, no Huffman coding.
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def _frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


class GrpcClient:
    """One h2c connection, one unary Export call at a time. The receiver answers OK
    with a DATA frame (the empty response message) before its trailers, and every
    error "trailers-only" (one HEADERS frame that ends the stream): so a call is OK
    when its stream ends after a DATA frame. Returns True/False, None when the
    connection is gone or the answer did not come within the timeout."""

    def __init__(self, port, timeout=5.0):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b""))
        self.stream = 1
        self.buf = b""
        self.port = port

    def _read_frame(self):
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            data = self.sock.recv(65536)
            if not data:
                raise OSError("closed")
            self.buf += data
        ln = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
        payload = self.buf[9:9 + ln]
        self.buf = self.buf[9 + ln:]
        return ftype, flags, stream, payload

    def export(self, body):
        sid = self.stream
        self.stream += 2
        hdrs = (_hpack_literal(":method", "POST") + _hpack_literal(":scheme", "http")
                + _hpack_literal(":path", TRACE_EXPORT)
                + _hpack_literal(":authority", f"127.0.0.1:{self.port}")
                + _hpack_literal("content-type", "application/grpc")
                + _hpack_literal("te", "trailers"))
        msg = b"\x00" + struct.pack(">I", len(body)) + body
        try:
            self.sock.sendall(_frame(1, 0x4, sid, hdrs) + _frame(0, 0x1, sid, msg))
            got_data = False
            while True:
                ftype, flags, stream, payload = self._read_frame()
                if ftype == 4 and not flags & 1:  # SETTINGS: acknowledge
                    self.sock.sendall(_frame(4, 1, 0, b""))
                elif ftype == 6 and not flags & 1:  # PING
                    self.sock.sendall(_frame(6, 1, 0, payload))
                elif ftype == 7:  # GOAWAY
                    return None
                elif stream == sid:
                    if ftype == 3:  # RST_STREAM
                        return False
                    if ftype == 0 and payload:
                        got_data = True
                    if ftype in (0, 1) and flags & 1:
                        return got_data
        except OSError:
            return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def send_grpc(client_box, port, first_id, n=SPANS_PER_REQ, name="pq", timeout=5.0):
    """Like send(): 200 for OK, 503 for an error status, 0 for no answer."""
    try:
        if client_box[0] is None:
            client_box[0] = GrpcClient(port, timeout)
    except OSError:
        return 0
    ok = client_box[0].export(trace_request_pb(first_id, n, name))
    if ok is None:
        client_box[0].close()
        client_box[0] = None
        return 0
    return 200 if ok else 503


BATCH_PROC = ("""  batch:
    timeout: 20ms
    send_batch_size: 120
    send_batch_max_size: 150
""", ["batch"])


def run_load(s, kill_after, threads=4, per_thread=60, name_of=None):
    """Half the client threads on OTLP/HTTP, half on OTLP/gRPC, each sending 50-span
    requests with ids (thread << 32) | n; kill -9 once kill_after spans were
    acknowledged (None: no kill). Returns (sent, acked, statuses)."""
    sent, acked, lock = set(), set(), threading.Lock()
    statuses = {}
    stop = threading.Event()

    def sender(k):
        box = [None]
        i = 0
        while not stop.is_set() and i < per_thread:
            first = (k << 32) | (i * SPANS_PER_REQ)
            name = name_of(i) if name_of else "pq"
            with lock:
                sent.update(range(first, first + SPANS_PER_REQ))
            if k % 2:
                st = send_grpc(box, s.grpc_port, first, name=name, timeout=3.0)
            else:
                st = send(s.port, first, timeout=3.0, name=name)
            with lock:
                statuses[st] = statuses.get(st, 0) + 1
            if st == 200:
                with lock:
                    acked.update(range(first, first + SPANS_PER_REQ))
            elif st == 0 and stop.is_set():
                break
            i += 1
        if box[0]:
            box[0].close()

    ts = [threading.Thread(target=sender, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    if kill_after is not None:
        wait_for("load", lambda: len(acked) >= kill_after or
                 not any(t.is_alive() for t in ts), WAIT)
        stop.set()  # no new requests; those in flight meet the kill
        s.router.kill()
    for t in ts:
        t.join(30)
    with lock:
        return set(sent), set(acked), dict(statuses)


# ---- cases ------------------------------------------------------------------------------

def case_persisted(args):
    s = Setup(args)
    try:
        s.start()
        n_req = 40
        n = fill(s, n_req)
        records_before = s.metric("switchyard_exporter_persistent_queue_records")
        assert records_before == n_req, records_before
        s.router.kill()  # kill -9
        segs = segments(s.dir)
        assert segs, "no segment file was written"
        s.backend_up()
        s.start()
        ids = wait_delivered(s, n)
        want = set(range(n))
        lost = want - set(ids)
        dup = len(ids) - len(set(ids))
        recovered = s.metric("switchyard_exporter_persistent_queue_recovered_records_total")
        redelivered = s.metric("switchyard_exporter_persistent_queue_redelivered_records_total")
        print(f"persisted: sent={n} acknowledged={n} delivered={len(set(ids))} lost={len(lost)} "
              f"duplicates={dup} recovered_records={recovered:.0f} "
              f"redelivered_records={redelivered:.0f}")
        assert not lost, f"{len(lost)} spans lost: {sorted(lost)[:10]}"
        assert set(ids) <= want, "the sink got spans that were never sent"
        assert recovered == n_req, recovered
        # Only records the first run had handed out (at most num_consumers at a time,
        # none of which reached the backend, which was down) may come twice.
        assert redelivered <= 4, redelivered
        assert dup <= redelivered * SPANS_PER_REQ, (dup, redelivered)
        assert dup == 0, f"{dup} duplicates although the backend never saw the first run"
        confirmed = s.metric("switchyard_exporter_persistent_queue_confirmed_records_total")
        assert confirmed == n_req, confirmed
        rc = s.router.stop()
        assert rc == 0, rc
        # Everything confirmed: the first run's segments are deleted.
        for p in segs:
            assert not os.path.exists(p), f"{p} was not deleted after all was confirmed"
        print("ok: all spans acknowledged before kill -9 delivered after the restart, by id")
    finally:
        s.cleanup()


def restart_and_collect(s):
    """Restarts the router with the backend up; returns the delivered ids once the
    recovered queue has drained."""
    s.backend_up()
    s.start()
    wait_for("the recovered queue to drain", lambda: queue_items(s) == 0, 2 * WAIT)
    time.sleep(0.3)
    return delivered_ids(s.sink)


def case_crash(args):
    """kill -9 in the middle of load from 2 OTLP/HTTP and 2 OTLP/gRPC clients through a
    batch processor (merging requests and splitting what passes 150 spans), five
    times: every span acknowledged is delivered after the restart."""
    runs = []
    for run in range(5):
        s = Setup(args, processors=BATCH_PROC)
        try:
            s.start()
            sent, acked, statuses = run_load(s, kill_after=1000 + 300 * run)
            assert acked, "nothing was acknowledged before the kill"
            ids = restart_and_collect(s)
            got = set(ids)
            lost = acked - got
            dup = len(ids) - len(got)
            redelivered = s.metric(
                "switchyard_exporter_persistent_queue_redelivered_records_total")
            print(f"crash run {run + 1}: sent={len(sent)} acknowledged={len(acked)} "
                  f"delivered={len(got)} lost={len(lost)} duplicates={dup} "
                  f"delivered_unacknowledged={len(got - acked)} "
                  f"redelivered_records={redelivered:.0f} statuses={statuses}")
            runs.append((len(acked), len(lost), dup))
            assert got <= sent, "the sink got spans that were never sent"
            assert not lost, f"run {run + 1}: {len(lost)} acknowledged spans lost"
            assert s.router.stop() == 0
        finally:
            s.cleanup()
    print("crash: acknowledged/lost/duplicates per run: " +
          ", ".join(f"{a}/{l}/{d}" for a, l, d in runs))
    print("ok: kill -9 under load (HTTP and gRPC, batch processor), 5 runs: nothing "
          "acknowledged was lost")


def case_mixed(args):
    """One pipeline, a persistent and an in-memory exporter (its backend up): answers
    wait for the disk only; kill -9; the persistent side loses nothing acknowledged."""
    mem_sink = Sink()
    s = Setup(args, processors=BATCH_PROC, memory_sink_port=mem_sink.port)
    try:
        s.start()
        sent, acked, statuses = run_load(s, kill_after=1000)
        assert acked, statuses
        at_memory = {i for r in mem_sink.received()
                     for i in ids_of_body(r["body"])}
        ids = restart_and_collect(s)
        lost = acked - set(ids)
        print(f"mixed: acknowledged={len(acked)} delivered by the persistent exporter after "
              f"the restart={len(set(ids))} lost={len(lost)} "
              f"at the in-memory exporter's backend before the kill={len(at_memory)} "
              f"statuses={statuses}")
        assert set(ids) <= sent and at_memory <= sent
        assert not lost, f"{len(lost)} acknowledged spans lost"
        assert at_memory, "the in-memory exporter sent nothing"
        assert s.router.stop() == 0
        print("ok: persistent + in-memory exporters: nothing acknowledged lost on the "
              "persistent side")
    finally:
        s.cleanup()
        mem_sink.stop()


def case_filter(args):
    """A filter processor drops every span named "drop": requests made only of such
    spans are settled when dropped (answered 200 at once), the rest once written."""
    procs = ("""  filter:
    error_mode: ignore
    traces:
      span:
        - name == "drop"
""" + BATCH_PROC[0], ["filter", "batch"])
    s = Setup(args, processors=procs)
    try:
        s.start()
        sent, acked, statuses = run_load(
            s, kill_after=None, per_thread=15, name_of=lambda i: "drop" if i % 3 == 0 else "keep")
        assert statuses == {200: 60}, statuses
        dropped = {(k << 32) | (i * SPANS_PER_REQ) + j for k in range(4) for i in range(0, 15, 3)
                   for j in range(SPANS_PER_REQ)}
        kept = acked - dropped
        wait_for("every kept span in the persistent queue", lambda: queue_items(s) == len(kept),
                 WAIT)
        s.router.kill()
        ids = restart_and_collect(s)
        print(f"filter: acknowledged={len(acked)} dropped by the filter={len(dropped)} "
              f"delivered={len(set(ids))} duplicates={len(ids) - len(set(ids))}")
        assert set(ids) == kept, (len(set(ids)), len(kept))
        assert s.router.stop() == 0
        print("ok: dropped batches settle; kept spans all delivered after kill -9")
    finally:
        s.cleanup()


def case_timeout(args):
    """Backend down and a small queue_size: once the persistent queue is full, a
    request waits settle_timeout (500ms) and gets 503 / UNAVAILABLE, never 200; every
    200 is on the disk (nothing acknowledged is held in memory only)."""
    s = Setup(args, queue_size=500, settle_timeout="500ms")
    try:
        s.start()
        want, refused, statuses = set(), 0, {}
        box = [None]
        for i in range(60):
            first = i * SPANS_PER_REQ
            st = send(s.port, first) if i % 2 == 0 else send_grpc(box, s.grpc_port, first)
            statuses[st] = statuses.get(st, 0) + 1
            if st == 200:
                want.update(range(first, first + SPANS_PER_REQ))
            elif st in (429, 503):
                refused += 1
            else:
                raise AssertionError(f"unexpected status {st}")
            if refused >= 6:
                break
        if box[0]:
            box[0].close()
        persisted = queue_items(s)
        timeouts = s.metric("switchyard_receiver_otlp_settle_timeouts_total", 'receiver="otlp"')
        grpc_failed = s.metric("switchyard_receiver_otlp_grpc_failed_calls_total",
                               'receiver="otlp"')
        print(f"timeout: acknowledged={len(want)} persisted={persisted:.0f} statuses={statuses} "
              f"settle_timeouts={timeouts} grpc_failed={grpc_failed}")
        assert statuses.get(503, 0) >= 2, statuses
        assert timeouts and timeouts >= 2, timeouts
        assert grpc_failed and grpc_failed >= 1, grpc_failed
        assert persisted == len(want), (persisted, len(want))
        s.router.kill()
        ids = restart_and_collect(s)
        assert want <= set(ids), len(want - set(ids))
        assert s.router.stop() == 0
        print("ok: a full persistent queue: 503 / UNAVAILABLE after settle_timeout, and "
              "every 200 was on the disk")
    finally:
        s.cleanup()


def case_corrupt(args):
    s = Setup(args)
    try:
        s.start()
        n_req = 10
        n = fill(s, n_req)
        s.router.kill()
        segs = segments(s.dir)
        assert len(segs) == 1, segs
        recs = records(segs[0])
        assert len(recs) == n_req, recs
        data = bytearray(open(segs[0], "rb").read())
        # One byte inside record 4's data, and the last record cut in half.
        off, ln, bad_id = recs[3]
        data[off + ln // 2] ^= 0x5a
        t_off, t_len, torn_id = recs[-1]
        del data[t_off + t_len // 2:]
        open(segs[0], "wb").write(bytes(data))
        s.backend_up()
        s.start()
        expect = set(range(n)) - set(range(3 * SPANS_PER_REQ, 4 * SPANS_PER_REQ)) \
            - set(range((n_req - 1) * SPANS_PER_REQ, n))
        ids = wait_delivered(s, len(expect))
        corrupt = s.metric("switchyard_exporter_persistent_queue_corrupt_records_total")
        ext = s.metric("switchyard_extension_file_storage_records_corrupt_total", "")
        print(f"corrupt: delivered={len(set(ids))} expected={len(expect)} "
              f"corrupt_records={corrupt:.0f} extension_counter={ext}")
        assert set(ids) == expect, (len(set(ids)), len(expect))
        assert len(ids) == len(expect), "duplicates"
        assert corrupt == 2, corrupt
        assert ext == 2, ext
        rc = s.router.stop()
        out = s.router.output()
        assert rc == 0, rc
        assert "skipped 2 damaged records" in out, out[-3000:]
        print("ok: a damaged record and a torn tail are skipped, counted and logged; the "
              "rest is delivered exactly")
    finally:
        s.cleanup()


class SlowBackend:
    """An OTLP/HTTP backend that keeps every request it is sent (as a backend that
    stored it) but answers only once released: a router killed meanwhile never
    learns that the backend got them."""

    def __init__(self, port):
        self.got, self.lock, self.release = [], threading.Lock(), threading.Event()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with backend.lock:
                    backend.got.append(body)
                backend.release.wait(30)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the router is gone: nobody hears the answer

        from harness import SinkHTTPServer
        self.server = SinkHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self):
        with self.lock:
            bodies = list(self.got)
        out = []
        for b in bodies:
            for rs in json.loads(b).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    out += [int(sp["spanId"], 16) for sp in ss.get("spans", [])]
        return out

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def case_duplicates(args):
    s = Setup(args)
    slow = None
    try:
        s.start()
        n = fill(s, 20)
        # The backend comes up slow: it takes the 4 consumers' requests and keeps
        # them, and the router is killed before any answer.
        slow = SlowBackend(s.sink_port)
        wait_for("4 requests at the backend", lambda: len(slow.got) >= 4, WAIT)
        s.router.kill()
        at_backend = set(slow.ids())
        slow.stop()
        slow = None
        s.backend_up()
        s.start()
        ids = wait_delivered(s, n)
        redelivered = s.metric("switchyard_exporter_persistent_queue_redelivered_records_total")
        both = at_backend & set(ids)
        dup = len(both) + (len(ids) - len(set(ids)))
        print(f"duplicates: spans the backend got before the kill={len(at_backend)} delivered "
              f"after the restart={len(set(ids))} of {n} duplicates={dup} "
              f"redelivered_records={redelivered:.0f} (x{SPANS_PER_REQ} spans)")
        assert (at_backend | set(ids)) == set(range(n)), "lost"
        assert set(ids) == set(range(n)), "the restart did not send everything not confirmed"
        assert 0 < dup <= redelivered * SPANS_PER_REQ, (dup, redelivered)
        assert redelivered <= 4, redelivered
        assert s.router.stop() == 0
        print("ok: only requests the backend had not confirmed come twice, and they are "
              "counted")
    finally:
        if slow:
            slow.stop()
        s.cleanup()


def expect_refusal(args, cfg, needle, what):
    r = Router(args.bin, [args.plugin_dir], cfg, wait=False)
    try:
        deadline = time.monotonic() + WAIT
        while r.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        rc = r.proc.poll()
        out = r.output()
        assert rc is not None and rc != 0, f"{what}: the router did not refuse to start:\n{out}"
        assert needle in out, f"{what}: no '{needle}' in:\n{out[-2000:]}"
        print(f"ok: {what}: exit {rc}, '{needle}'")
    finally:
        r.cleanup()


def case_config(args):
    tmp = tempfile.mkdtemp(prefix="sy-pq-cfg-")
    try:
        port, mport, sport = free_port(), free_port(), free_port()
        missing = os.path.join(tmp, "missing")
        expect_refusal(args, config(port, mport, sport, missing), "does not exist",
                       "a missing directory")
        plain = os.path.join(tmp, "file")
        open(plain, "w").close()
        expect_refusal(args, config(port, mport, sport, plain), "is not a directory",
                       "a file as directory")
        if os.geteuid() != 0:
            ro = os.path.join(tmp, "ro")
            os.mkdir(ro, 0o500)
            expect_refusal(args, config(port, mport, sport, ro), "is not writable",
                           "a directory that is not writable")
        else:
            print("note: running as root, who may write anywhere: the not-writable case "
                  "is checked through a directory that is not a directory above")
        good = os.path.join(tmp, "good")
        os.mkdir(good)
        expect_refusal(args, config(port, mport, sport, good, storage="file_storage/nope"),
                       "storage \"file_storage/nope\" not found", "an unknown storage id")
        # create_directory makes it.
        made = os.path.join(tmp, "made")
        r = Router(args.bin, [args.plugin_dir],
                   config(port, mport, sport, made, extra_fs="    create_directory: true\n"))
        try:
            assert os.path.isdir(made), "create_directory did not create the directory"
            # A second router on the same directory waits `timeout`, then refuses.
            expect_refusal(args, config(free_port(), free_port(), sport, made),
                           "is locked by another process", "a second router on the directory")
            assert r.stop() == 0
        finally:
            r.cleanup()
        print("ok: configuration errors are clear")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_full(args):
    s = Setup(args, queue_size=500)
    try:
        s.start()
        want, refused, statuses = send_until_refused(s, 400)
        assert refused > 0, "the bound never pushed back"
        persisted = queue_items(s)
        # What was acknowledged beyond the bound waits in the core's in-memory queues:
        # the window a kill -9 would lose while the persistent queue is full.
        in_memory = len(want) - persisted
        print(f"full: acknowledged requests={len(want) // SPANS_PER_REQ} ({len(want)} spans) "
              f"refused={refused} persisted spans={persisted:.0f} (queue_size 500 items) "
              f"acknowledged in memory only={in_memory:.0f} statuses={sorted(statuses)}")
        assert persisted <= 500, persisted
        s.backend_up()
        ids = wait_delivered(s, len(want))
        check_refused_delivery(s, ids, want)
        assert persisted == len(want), "acknowledged but held in memory only"
        assert s.router.stop() == 0
        print("ok: a full persistent queue pushes back (503 after settle_timeout, then 429); "
              "every span acknowledged was on the disk and is delivered once")
    finally:
        s.cleanup()


def case_sigterm(args):
    s = Setup(args)
    try:
        s.start()
        n = fill(s, 20)
        rc = s.router.stop()
        out = s.router.output()
        assert rc == 0, rc
        assert "requests stay in the persistent queue for the next run" in out, out[-2000:]
        s.backend_up()
        s.start()
        ids = wait_delivered(s, n)
        print(f"sigterm: delivered={len(set(ids))} of {n}, duplicates={len(ids) - len(set(ids))}")
        assert set(ids) == set(range(n)) and len(ids) == n, (len(set(ids)), len(ids))
        assert s.router.stop() == 0
        print("ok: SIGTERM with the backend down keeps the queue (exit 0); the next run "
              "delivers it exactly once")
    finally:
        s.cleanup()


FSIZE_WRAPPER = """#!/usr/bin/env python3
# Runs the router with a file size limit of %d bytes and SIGXFSZ ignored (kept
# across exec), so that a write past the limit fails with EFBIG as on a full disk.
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (%d, %d))
os.execv(%r, [%r] + sys.argv[1:])
"""


def case_disk(args):
    s = Setup(args)
    try:
        limit = 256 * 1024
        wrapper = os.path.join(s.tmp, "fsize-router")
        with open(wrapper, "w") as f:
            f.write(FSIZE_WRAPPER % (limit, limit, limit, args.bin, args.bin))
        os.chmod(wrapper, 0o755)
        s.start(wrapper)
        want, refused, _ = send_until_refused(s, 3000)
        full = s.metric("switchyard_extension_file_storage_append_full_total", "")
        on_disk = sum(os.path.getsize(p) for p in segments(s.dir))
        print(f"disk: file size limit {limit} B: acknowledged requests="
              f"{len(want) // SPANS_PER_REQ} "
              f"refused={refused} appends refused for room={full} segment bytes={on_disk} "
              f"persisted spans={queue_items(s):.0f}")
        assert refused > 0, "a full disk never pushed back"
        assert full and full > 0, "no append was refused for room"
        assert on_disk <= limit, on_disk
        s.backend_up()
        ids = wait_delivered(s, len(want), 2 * WAIT)
        check_refused_delivery(s, ids, want)
        # With room again (the confirmed segment deleted), new data goes through.
        assert send(s.port, 10 ** 9) == 200
        wait_delivered(s, len(want) + SPANS_PER_REQ)
        assert s.router.stop() == 0
        print("ok: a full disk (EFBIG under RLIMIT_FSIZE) pushes back to the client, loses "
              "nothing acknowledged, and recovers once the queue is confirmed")
    finally:
        s.cleanup()


CASES = {"persisted": case_persisted, "sigterm": case_sigterm, "duplicates": case_duplicates, "crash": case_crash, "corrupt": case_corrupt,
         "config": case_config, "full": case_full, "disk": case_disk, "mixed": case_mixed,
         "filter": case_filter, "timeout": case_timeout}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    t0 = time.monotonic()
    for name in args.cases:
        CASES[name](args)
    print(f"all persistent queue cases passed in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
