"""Bad-input builders and senders of the catalogue (tests/integration/bad_inputs).

Each sender takes the target (ports of the router under test) and returns the
router's answer in the protocol's own terms, as a dict:
  HTTP/1.1  {"http": status, "text": body, "closed": bool, "headers": {...}}
  gRPC      {"grpc": code, "text": grpc-message} or {"rst": code} or
            {"goaway": code, "text": debug data} (with "closed")
  UDP       {"udp": "sent"}: a datagram has no answer; the metric is the answer
  config    {"exit": code, "text": output}
Python standard library plus Debian's python3-h2 (as test_conn_guard.py)."""
import json
import os
import socket
import struct
import subprocess
import tempfile
import time
import zlib

from harness import field_len, field_fixed64, varint
from test_compression import ZSTD
from test_conn_guard import H2Client, grpc_message, http_connect, read_until_closed  # noqa: F401
from test_otlp_http import trace_request_pb, trace_request_json

import ctypes
import h2.events
import h2.exceptions

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MIB = 1 << 20


# --- bodies ----------------------------------------------------------------------------

def pb_span_attr(value):
    """An ExportTraceServiceRequest whose one span has the attribute "k" = value
    (an encoded AnyValue)."""
    kv = field_len(1, b"k") + field_len(2, value)
    span = (field_len(1, bytes(range(1, 17))) + field_len(2, bytes(range(1, 9))) +
            field_len(5, b"bad") + field_fixed64(7, 1) + field_fixed64(8, 2) + field_len(9, kv))
    return field_len(1, field_len(2, field_len(2, span)))


def pb_nested(depth):
    """AnyValue{kvlist_value{values[{key, value: AnyValue{kvlist...}}]}} depth deep."""
    v = field_len(1, b"leaf")  # string_value
    for _ in range(depth):
        v = field_len(6, field_len(1, field_len(1, b"k") + field_len(2, v)))
    return pb_span_attr(v)


def pb_raw_len(length_varint):
    """A request whose first field (resource_spans) declares the given length bytes."""
    return b"\x0a" + length_varint + b"\x00" * 16


def json_nested(depth):
    """A span attribute whose AnyValue holds arrays of arrays `depth` deep."""
    inner = '{"arrayValue":{"values":[' * depth + '{"intValue":"1"}' + "]}}" * depth
    return ('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",'
            '"spanId":"eee19b7ec3c1b174","name":"deep","attributes":[{"key":"k","value":'
            '%s}]}]}]}]}' % inner).encode()


def json_bad_utf8():
    good = trace_request_json("utf8-marker")
    return good.replace(b"utf8-marker", b"bad\xff\xfe\xc0\xafname")


def pb_bad_utf8():
    return trace_request_pb("utf8-marker").replace(b"utf8-marker", b"bad\xff\xfe\xc0\xafname")


def gzip_bomb(total=1 << 30, chunk=64 << 20):
    """`total` bytes of zeros in gzip (about 1 MB for 1 GiB): one chunk compressed
    after a full flush gives the same deflate blocks every time, so the stream is
    that block repeated, then the final block and the trailer (CRC-32 and size)."""
    zeros = bytes(chunk)
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert first.endswith(block), "deflate blocks after a full flush differ"
    end = c.flush()[:-8]
    crc = 0
    for _ in range(total // chunk):
        crc = zlib.crc32(zeros, crc)
    return first + block * (total // chunk - 1) + end + struct.pack("<II", crc, total & 0xFFFFFFFF)


def zstd_bomb(total=1 << 30, chunk=64 << 20):
    """`total` bytes of zeros as concatenated zstd frames of `chunk` bytes without
    their content size (so that only decoding tells the size): about 2 KB per frame."""
    zeros = bytes(chunk)
    cap = ZSTD.ZSTD_compressBound(chunk)
    out = ctypes.create_string_buffer(cap)
    cctx = ZSTD.ZSTD_createCCtx()
    try:
        ZSTD.ZSTD_CCtx_setParameter(cctx, 200, 0)  # ZSTD_c_contentSizeFlag = 0
        ZSTD.ZSTD_CCtx_setParameter(cctx, 100, 19)  # ZSTD_c_compressionLevel
        n = ZSTD.ZSTD_compress2(cctx, out, cap, zeros, chunk)
        assert not ZSTD.ZSTD_isError(n), "zstd compress failed"
        frame = out.raw[:n]
    finally:
        ZSTD.ZSTD_freeCCtx(cctx)
    return frame * (total // chunk)


_BOMBS = {}


def bomb(kind):
    if kind not in _BOMBS:
        _BOMBS[kind] = gzip_bomb() if kind == "gzip" else zstd_bomb()
    return _BOMBS[kind]


def zipkin_json(name, trace_id="5b8efff798038103d269b633813fc60c"):
    return json.dumps([{"traceId": trace_id, "id": "eee19b7ec3c1b174", "name": name,
                        "timestamp": 1544712660000000, "duration": 1000,
                        "localEndpoint": {"serviceName": "zipkin-bad-inputs"}}]).encode()


# --- Jaeger Thrift (binary and compact), enough for emitBatch ---------------------------

def tb_field(t, fid):
    return struct.pack(">bh", t, fid)


def tb_str(v):
    return struct.pack(">i", len(v)) + v


def jaeger_binary(op, declared_str_len=None, list_count=None, batch_only=False):
    """emitBatch(Batch{process{serviceName}, spans[Span]}) in Thrift binary (with
    batch_only, the Batch alone: the thrift_http body)."""
    span = (tb_field(10, 1) + struct.pack(">q", 7) + tb_field(10, 2) + struct.pack(">q", 1) +
            tb_field(10, 3) + struct.pack(">q", 9) + tb_field(10, 4) + struct.pack(">q", 0) +
            tb_field(11, 5) + (tb_str(op) if declared_str_len is None else
                               struct.pack(">i", declared_str_len) + op) +
            tb_field(8, 7) + struct.pack(">i", 1) + tb_field(10, 8) + struct.pack(">q", 1_700_000_000_000_000) +
            tb_field(10, 9) + struct.pack(">q", 1000) + b"\x00")
    process = tb_field(11, 1) + tb_str(b"jaeger-bad-inputs") + b"\x00"
    spans = tb_field(15, 2) + struct.pack(">bi", 12, 1 if list_count is None else list_count) + span
    batch = tb_field(12, 1) + process + spans + b"\x00"
    if batch_only:
        return batch
    args = tb_field(12, 1) + batch + b"\x00"
    return struct.pack(">I", 0x80010004) + tb_str(b"emitBatch") + struct.pack(">i", 0) + args


def _zz(n):
    return varint((n << 1) ^ (n >> 63))


def _cf(last, fid, ctype):
    d = fid - last
    return bytes([(d << 4) | ctype]) if 0 < d <= 15 else bytes([ctype]) + _zz(fid)


def jaeger_compact(op, nesting=0):
    """emitBatch in Thrift compact; `nesting` extra structs inside the span's tag list
    field make it nest that deep."""
    span = (_cf(0, 1, 6) + _zz(7) + _cf(1, 2, 6) + _zz(1) + _cf(2, 3, 6) + _zz(9) +
            _cf(3, 4, 6) + _zz(0) + _cf(4, 5, 8) + varint(len(op)) + op +
            _cf(5, 7, 5) + _zz(1) + _cf(7, 8, 6) + _zz(1_700_000_000_000_000) +
            _cf(8, 9, 6) + _zz(1000))
    if nesting:
        span += _cf(9, 15, 12) + (b"\x1c" * nesting) + b"\x00" * (nesting + 1)
    span += b"\x00"
    process = _cf(0, 1, 8) + varint(17) + b"jaeger-bad-inputs" + b"\x00"
    batch = _cf(0, 1, 12) + process + _cf(1, 2, 9) + bytes([(1 << 4) | 12]) + span + b"\x00"
    args = _cf(0, 1, 12) + batch + b"\x00"
    return b"\x82\x81" + varint(0) + varint(9) + b"emitBatch" + args


# --- HTTP/1.1 ---------------------------------------------------------------------------

def parse_http(data, closed):
    """The first answer in data as {"http", "text", "headers", "closed", "raw"}."""
    if not data.startswith(b"HTTP/1."):
        return {"http": None, "text": data[:200].decode("latin-1"), "closed": closed, "raw": data}
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    return {"http": int(lines[0][9:12]), "text": rest[:n].decode("utf-8", "replace"),
            "headers": headers, "closed": closed, "raw": data}


def http_raw(port, payload, wait=3.0, shut_wr=False, pause=None):
    """Sends raw bytes (a list of them is sent with `pause` seconds between), reads
    until the router closes or `wait` passes; returns parse_http()."""
    s = http_connect(port)
    try:
        for i, part in enumerate(payload if isinstance(payload, list) else [payload]):
            if i and pause:
                time.sleep(pause)
            try:
                s.sendall(part)
            except OSError:
                break
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        data, closed, _ = read_until_closed(s, time.monotonic() + wait)
    finally:
        s.close()
    return parse_http(data, closed)


def http_post(port, path, body, ctype="application/x-protobuf", extra=b"", wait=3.0):
    head = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % path.encode())
    if ctype is not None:
        head += b"Content-Type: " + ctype.encode() + b"\r\n"
    head += extra + b"Content-Length: %d\r\n\r\n" % len(body)
    return http_raw(port, head + body, wait)


def http_head(path=b"/v1/traces", ctype=b"application/x-protobuf"):
    return b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + ctype + b"\r\n"


# --- HTTP/2 and gRPC --------------------------------------------------------------------

class Call:
    """Drives one H2Client and records everything the router says."""

    def __init__(self, port):
        self.c = H2Client(port, timeout=5.0)
        self.headers = {}   # stream id -> {name: value} (response headers and trailers)
        self.reset = {}
        self.goaway = None

    def open(self, extra=(), path=TRACE_EXPORT, ctype=b"application/grpc", end=False):
        sid = self.c.conn.get_next_available_stream_id()
        hdrs = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                (b":authority", b"127.0.0.1"), (b"content-type", ctype), (b"te", b"trailers")]
        self.c.conn.send_headers(sid, hdrs + list(extra), end_stream=end)
        self.c.flush()
        return sid

    def send(self, sid, data, end=True):
        self.c.conn.send_data(sid, data, end_stream=end)
        self.c.flush()

    def pump_until(self, done, wait):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not done() and not self.c.closed:
            self.c.sock.settimeout(max(0.01, min(0.05, deadline - time.monotonic())))
            try:
                data = self.c.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                self.c.closed = True
                break
            try:
                events = self.c.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                events = []
            for ev in events:
                if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    d = self.headers.setdefault(ev.stream_id, {})
                    for k, v in ev.headers:
                        d[k.decode()] = v.decode("utf-8", "replace")
                elif isinstance(ev, h2.events.StreamReset):
                    self.reset[ev.stream_id] = ev.error_code
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    self.goaway = (ev.error_code, ev.additional_data or b"")
            try:
                self.c.flush()
            except OSError:
                self.c.closed = True

    def answer(self, sid):
        h = self.headers.get(sid, {})
        if "grpc-status" in h:
            return {"grpc": int(h["grpc-status"]), "text": _pct(h.get("grpc-message", "")),
                    "status": int(h.get(":status", "0")), "closed": self.c.closed}
        if sid in self.reset:
            return {"rst": self.reset[sid], "closed": self.c.closed}
        if ":status" in h and h[":status"] != "200":
            return {"http": int(h[":status"]), "text": "", "closed": self.c.closed}
        if self.goaway:
            return {"goaway": self.goaway[0], "text": self.goaway[1].decode("latin-1"),
                    "closed": self.c.closed}
        return {"none": True, "closed": self.c.closed}

    def close(self):
        self.c.close()


def _pct(s):
    import urllib.parse
    return urllib.parse.unquote(s)


def grpc_unary(port, frame, extra=(), path=TRACE_EXPORT, ctype=b"application/grpc",
               end=True, wait=5.0):
    call = Call(port)
    try:
        sid = call.open(extra, path, ctype)
        if frame == b"" and end:
            call.send(sid, b"", True)
        elif frame is not None:
            sent = 0
            while sent < len(frame):
                n = min(len(frame) - sent, call.c.conn.local_flow_control_window(sid),
                        call.c.conn.max_outbound_frame_size)
                if n <= 0:
                    call.pump_until(lambda: False, 0.05)
                    if sid in call.reset or sid in call.headers or call.c.closed:
                        break
                    continue
                last = sent + n == len(frame)
                call.send(sid, frame[sent:sent + n], end and last)
                sent += n
        call.pump_until(lambda: "grpc-status" in call.headers.get(sid, {}) or sid in call.reset,
                        wait)
        return call.answer(sid)
    except (OSError, h2.exceptions.ProtocolError) as e:
        return {"error": repr(e)}
    finally:
        call.close()


def h2_flood(port, frames, wait=3.0, preface=True):
    """Sends the client preface and SETTINGS (unless preface is False), then the raw
    frames (bytes), reads what the router answers; returns the GOAWAY it sent (or
    "none") and whether it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got, closed, goaway = b"", False, None
    try:
        if preface:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2frame(4, 0, 0, b""))
        try:
            s.sendall(frames)
        except OSError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(1 << 20)
            except socket.timeout:
                break
            except OSError:
                chunk = b""
            if not chunk:
                closed = True
                break
            got += chunk
    finally:
        s.close()
    i = 0
    while i + 9 <= len(got):
        length = int.from_bytes(got[i:i + 3], "big")
        if got[i + 3] == 7 and i + 9 + length <= len(got):
            p = got[i + 9:i + 9 + length]
            goaway = (int.from_bytes(p[4:8], "big"), p[8:].decode("latin-1"))
        i += 9 + length
    if goaway:
        return {"goaway": goaway[0], "text": goaway[1], "closed": closed}
    return {"none": True, "closed": closed}


def h2frame(ftype, flags, sid, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def hpack_call_headers():
    """A HEADERS block for a gRPC call, literal without indexing (no Huffman)."""
    out = b""
    for k, v in [(b":method", b"POST"), (b":scheme", b"http"), (b":path", TRACE_EXPORT.encode()),
                 (b":authority", b"x"), (b"content-type", b"application/grpc")]:
        out += b"\x00" + bytes([len(k)]) + k + bytes([len(v)]) + v
    return out


# --- config files -----------------------------------------------------------------------

def run_config(binary, plugin_dir, text, timeout=20.0):
    """Runs `switchyard --config` on text (bytes); returns {"exit", "text", "maxrss_kb"}
    (the output with the file's path written as config.yaml; the peak RSS sampled
    from /proc every 5 ms while it runs)."""
    with tempfile.TemporaryDirectory(prefix="sy-bad-cfg-") as d:
        path = os.path.join(d, "config.yaml")
        out_path = os.path.join(d, "out.txt")
        with open(path, "wb") as f:
            f.write(text)
        with open(out_path, "wb") as out:
            p = subprocess.Popen([binary, "--config", path, "--plugin-dir", plugin_dir],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            hwm = 0
            while True:
                hwm = max(hwm, vm_hwm_kb(p.pid))
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    p.kill()
                    pid, status, usage = os.wait4(p.pid, 0)
                    return {"exit": None, "text": "still running after %ss" % timeout}
                time.sleep(0.005)
            p.returncode = os.waitstatus_to_exitcode(status)
        with open(out_path, "rb") as f:
            output = f.read().decode("utf-8", "replace")
        return {"exit": p.returncode, "text": output.replace(path, "config.yaml"),
                "maxrss_kb": hwm}


def vm_hwm_kb(pid):
    """VmHWM of a process that may be exiting (0 once it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- connection-level attacks -----------------------------------------------------------

def slowloris(port, n, head, body=None, period=0.1, limit=6.0):
    """n connections; each sends `head` at once when body is given (then the body a
    byte every `period` s), else `head` itself a byte every `period` s, until the
    router closes it or `limit` s pass. Returns the answers' common status (or the
    list of them), whether all were closed, and the first answer's text."""
    socks = [http_connect(port) for _ in range(n)]
    if body is not None:
        for s in socks:
            s.sendall(head)
    drip = head if body is None else body
    answers = {}
    start = time.monotonic()
    i = 0
    while time.monotonic() < start + limit and len(answers) < n:
        for k, s in enumerate(socks):
            if k in answers:
                continue
            try:
                s.sendall(drip[i % len(drip):i % len(drip) + 1])
            except OSError:
                pass
            s.settimeout(0.001)
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            rest, closed, _ = read_until_closed(s, time.monotonic() + 1.0)
            answers[k] = parse_http(data + rest, closed or not data)
        i += 1
        time.sleep(period)
    for s in socks:
        s.close()
    statuses = sorted({a["http"] for a in answers.values()}, key=str)
    first = next(iter(answers.values()), {"text": ""})
    return {"http": statuses[0] if len(statuses) == 1 else statuses,
            "closed": len(answers) == n and all(a["closed"] for a in answers.values()),
            "text": first["text"], "took": round(time.monotonic() - start, 1)}


def open_many(port, n, cap, wait=10.0, step=400):
    """Opens n connections without blocking, `step` at a time (each step once the
    router has closed all of the previous ones but `cap`, or after 3 s: more at once
    would overflow the listen backlog and leave the rest waiting for SYN
    retransmissions, which tests the kernel rather than the router), and collects
    what the router sends on each before it closes it, until all but the held ones
    ended or `wait` seconds after the last step. Returns (sockets, {index: (bytes,
    closed)}, indexes of the ones that ended)."""
    import select
    addr = ("127.0.0.1", port)
    socks, got, ended, by_fd = [], {}, set(), {}
    poller = select.poll()

    def collect(until, want):
        while time.monotonic() < until and len(ended) < want:
            for fd, ev in poller.poll(50):
                i = by_fd[fd]
                try:
                    data = socks[i].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                prev = got.get(i, (b"", False))[0]
                if data:
                    got[i] = (prev + data, False)
                else:
                    got[i] = (prev, True)
                    ended.add(i)
                    poller.unregister(fd)

    for first in range(0, n, step):
        for _ in range(first, min(n, first + step)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(addr)
            by_fd[s.fileno()] = len(socks)
            socks.append(s)
            poller.register(s.fileno(), select.POLLIN)
        collect(time.monotonic() + 3.0, len(socks) - cap)
    collect(time.monotonic() + wait, n - cap)
    return socks, got, ended


def flood_http(port, n, cap, normal):
    """n idle connections against max_connections `cap`: the answer of the first over
    the cap, whether all over the cap were closed, how many stayed open, and what a
    normal client is told meanwhile."""
    socks, got, ended = open_many(port, n, cap, wait=12.0)
    time.sleep(2.5)  # past the drain of the refused ones (a flood beyond is not answered)
    during = normal()
    for s in socks:
        s.close()
    answered = [parse_http(d, c) for d, c in got.values() if d]
    statuses = sorted({a["http"] for a in answered}, key=str)
    return {"http": statuses[0] if len(statuses) == 1 else statuses,
            "text": answered[0]["text"] if answered else "",
            "closed": len(ended) == n - cap, "held": n - len(ended), "during": during,
            "retry_after": all(a.get("headers", {}).get("retry-after") == "1" for a in answered)}


def flood_grpc(port, n, cap, normal):
    """As flood_http on the gRPC port: GOAWAYs read from the closed connections."""
    socks, got, ended = open_many(port, n, cap, wait=12.0)
    time.sleep(2.5)  # past the drain of the refused ones (a flood beyond is not answered)
    during = normal()
    for s in socks:
        s.close()
    goaways = set()
    for data, _ in got.values():
        i = 0
        while i + 9 <= len(data):
            length = int.from_bytes(data[i:i + 3], "big")
            if data[i + 3] == 7 and i + 9 + length <= len(data):
                p = data[i + 9:i + 9 + length]
                goaways.add((int.from_bytes(p[4:8], "big"), p[8:].decode("latin-1")))
            i += 9 + length
    g = sorted(goaways)
    return {"goaway": g[0][0] if len(g) == 1 else g, "text": g[0][1] if g else "",
            "closed": len(ended) == n - cap, "held": n - len(ended), "during": during}
