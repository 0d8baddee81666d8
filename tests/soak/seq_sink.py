"""A counting OTLP/HTTP trace sink for the soak and fault tests (Python standard
library only).

Unlike tests/integration/sinks/http_sink.py it keeps no bodies: it decodes each
ExportTraceServiceRequest (protobuf, optionally gzip) down to its spans and counts
every span it accepted by its identity, so that a run of minutes fits in memory:

  - a span of `bench/loadgen --sequence C` carries C, its request number and its
    index in its span ID (lg_payload_number in bench/loadgen_payload.c): counted
    under "lg<C>" at request * spans_per_request + index;
  - a span named "<prefix>-<n>" (tests/integration/node/reload_load.mjs) is counted
    under <prefix> at n;
  - anything else is counted as `unknown`.

Counts are bytes (saturating at 255) in one bytearray per client. Spans in requests
answered with another status than 200 are counted apart, per status
(`rejected[status]`), the same way.

How it answers: 200, after `delay` seconds when set; `answers` (a list of
(status, headers) taken in turn, cycling) overrides the status; stop() takes the
backend down (the port refuses connections) and start() brings it back on the same
port.
"""
import gzip
import http.server
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration",
                                "sinks"))
from harness import SinkHTTPServer, read_varint as _varint  # noqa: E402
from http_sink import Sink  # noqa: E402

NAME_RE = re.compile(rb"^(.+)-([0-9]{1,12})$")


def _fields(b, start=0, end=None):
    """Yields (field number, wire type, value or (start, end) of a length field)."""
    i = start
    end = len(b) if end is None else end
    while i < end:
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
            yield num, wt, v
        elif wt == 1:
            i += 8
        elif wt == 2:
            n, i = _varint(b, i)
            yield num, wt, (i, i + n)
            i += n
        elif wt == 5:
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
    if i != end:
        raise ValueError("field runs past its message")


def span_identities(body):
    """(span_id bytes, name bytes) of every span of an ExportTraceServiceRequest."""
    out = []
    for n1, w1, rs in _fields(body):
        if n1 != 1 or w1 != 2:
            continue
        for n2, w2, ss in _fields(body, *rs):
            if n2 != 2 or w2 != 2:
                continue
            for n3, w3, sp in _fields(body, *ss):
                if n3 != 2 or w3 != 2:
                    continue
                sid = name = b""
                for n4, w4, v in _fields(body, *sp):
                    if w4 == 2 and n4 == 2:
                        sid = body[v[0]:v[1]]
                    elif w4 == 2 and n4 == 5:
                        name = body[v[0]:v[1]]
                out.append((sid, name))
    return out


class Counts:
    """Per client key, a bytearray of how many times each item was seen."""

    def __init__(self, spans_per_request):
        self.spr = spans_per_request
        self.by_client = {}
        self.unknown = 0
        self.total = 0

    def _bump(self, key, index):
        arr = self.by_client.get(key)
        if arr is None:
            arr = self.by_client[key] = bytearray()
        if index >= len(arr):
            arr.extend(bytes(max(index + 1 - len(arr), len(arr) // 2 + 1024)))
        if arr[index] < 255:
            arr[index] += 1

    def add(self, spans):
        for sid, name in spans:
            self.total += 1
            m = NAME_RE.match(name)
            if m:
                self._bump(m.group(1).decode("utf-8", "replace"), int(m.group(2)))
            elif len(sid) == 8 and sid[0:2] != b"\0\0" and (sid[6] << 8 | sid[7]) < self.spr:
                seq = int.from_bytes(sid[2:6], "big")
                self._bump("lg%d" % (sid[0] << 8 | sid[1]), seq * self.spr + (sid[6] << 8 | sid[7]))
            else:
                self.unknown += 1

    def get(self, key, index):
        arr = self.by_client.get(key)
        return arr[index] if arr is not None and index < len(arr) else 0

    def items(self, key):
        """(index, count) of every item of `key` seen at least once."""
        arr = self.by_client.get(key) or b""
        return [(i, c) for i, c in enumerate(arr) if c]


class SeqSink(Sink):
    """http_sink.Sink's connection handling and stop(), with counts instead of
    the bodies."""

    def __init__(self, spans_per_request, port=0, delay=0.0, answers=None):
        self.accepted = Counts(spans_per_request)
        self.rejected = {}  # status -> Counts
        self.spr = spans_per_request
        self.delay = delay
        self.answers = list(answers or [])
        self.turn = 0
        self.statuses = {}  # status -> number of requests answered so far
        self.bad_bodies = 0
        super().__init__(port)

    def set_answers(self, answers):
        with self.lock:
            self.answers = list(answers)
            self.turn = 0

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
                try:
                    if self.headers.get("Content-Encoding") == "gzip":
                        raw = gzip.decompress(raw)
                    spans = span_identities(raw)
                except (ValueError, IndexError, OSError, EOFError):
                    spans = None
                if sink.delay:
                    time.sleep(sink.delay)
                status, extra = 200, {}
                with sink.lock:
                    if spans is None:
                        sink.bad_bodies += 1
                        status = 400
                    elif sink.answers:
                        status, extra = sink.answers[sink.turn % len(sink.answers)]
                        sink.turn += 1
                    sink.statuses[status] = sink.statuses.get(status, 0) + 1
                    if spans is not None:
                        if status == 200:
                            sink.accepted.add(spans)
                        else:
                            sink.rejected.setdefault(status, Counts(sink.spr)).add(spans)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = SinkHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def total(self):
        with self.lock:
            return self.accepted.total


# ---- what was acknowledged against what arrived ---------------------------------------

def read_ack_log(path):
    """bench/loadgen --ack-log: {request number: (outcome letter, status)}."""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                out[int(parts[0])] = (parts[1], int(parts[2]))
    return out


def check_items(counts, key, acked, unacked, other_counts=()):
    """Compares the items of one client: `acked` and `unacked` are iterables of item
    indices the client was told were accepted, or not (refused, failed, no answer).
    Returns a dict: acked, lost (acked, never at the sink), duplicated (extra copies
    of any item), unacked_delivered (not acknowledged yet at the sink, which a
    broken connection or a timeout allows), never_sent (at the sink, not sent: a
    bug), rejected (acked items a backend refused for good: in other_counts)."""
    acked = set(acked)
    unacked = set(unacked) - acked
    r = {"acked": len(acked), "lost": 0, "duplicated": 0, "unacked_delivered": 0,
         "never_sent": 0, "rejected": 0}
    for i, c in counts.items(key):
        if c > 1:
            r["duplicated"] += c - 1
        if i in unacked:
            r["unacked_delivered"] += 1
        elif i not in acked:
            r["never_sent"] += 1
    for i in acked:
        if counts.get(key, i) == 0:
            if any(o.get(key, i) for o in other_counts):
                r["rejected"] += 1
            else:
                r["lost"] += 1
    return r


def check_loadgen(sink, client, ack_log_path, permanent=()):
    """The figures of check_items for the spans of `bench/loadgen --sequence client`,
    computed request by request on the count arrays (a soak acknowledges tens of
    millions of spans); the spans the sink answered with a status in `permanent`
    count as rejected, not lost."""
    log = read_ack_log(ack_log_path)
    spr, key = sink.spr, "lg%d" % client
    r = {"acked": 0, "lost": 0, "duplicated": 0, "unacked_delivered": 0, "never_sent": 0,
         "rejected": 0, "requests": len(log), "refused_requests": 0, "failed_requests": 0}
    with sink.lock:
        arr = bytes(sink.accepted.by_client.get(key, b""))
        others = [sink.rejected[s] for s in permanent if s in sink.rejected]
    covered = 0
    for seq, (outcome, _) in log.items():
        chunk = arr[seq * spr:(seq + 1) * spr]
        chunk += bytes(spr - len(chunk))
        zeros = chunk.count(0)
        seen = spr - zeros
        covered += seen
        r["duplicated"] += sum(chunk) - seen
        if outcome == "A":
            r["acked"] += spr
            for k in (i for i, c in enumerate(chunk) if c == 0) if zeros else ():
                if any(o.get(key, seq * spr + k) for o in others):
                    r["rejected"] += 1
                else:
                    r["lost"] += 1
        else:
            r["unacked_delivered"] += seen
            r["refused_requests" if outcome == "R" else "failed_requests"] += 1
    r["never_sent"] = len(arr) - arr.count(0) - covered
    return r


def merge(results):
    """Sums the figures of several check_* results."""
    out = {}
    for r in results:
        for k, v in r.items():
            out[k] = out.get(k, 0) + v
    return out
