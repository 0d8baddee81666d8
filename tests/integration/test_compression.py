#!/usr/bin/env python3
"""Compression through the binary: every codec in and out, bombs, corrupt input.

    test_compression.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

One router: the otlp receiver (HTTP and gRPC, 4 MiB bounds) -> otlphttp exporters
with each `compression` (gzip level 12, deflate level 9, zlib, zstd level 19,
snappy, none) and `encoding: json` to a Python sink that keeps the raw bodies, and
-> otlp (gRPC) exporters with snappy and zstd to the router's own second receiver
(otlp/loop), whose pipeline sends to the sink uncompressed. Checked:

1. OTLP/HTTP in with Content-Encoding gzip, x-gzip, deflate (zlib format and raw),
   zlib, zstd (with and without the frame's content size), snappy, identity: 200,
   and every span reaches every exporter, each body with the exporter's
   Content-Encoding and decompressing (here, with zlib / libzstd / libsnappy through
   ctypes) to OTLP/JSON holding the spans; over the gRPC loop each span arrives twice.
2. OTLP/gRPC in (curl --http2-prior-knowledge, raw frames) with grpc-encoding gzip,
   deflate, zstd, snappy: OK (grpc-status 0).
3. A gzip bomb (1 GiB of zeros, 1 MB compressed): HTTP 413 and gRPC
   RESOURCE_EXHAUSTED (8), while the router's peak RSS (VmHWM) grows by less than
   32 MiB; a snappy body declaring 4 GiB: 413 / RESOURCE_EXHAUSTED; a snappy body
   declaring more than its bytes can hold, truncated gzip, corrupt zstd and deflate:
   400 / INVALID_ARGUMENT (3); x-snappy-framed (not supported): 400.
4. Config errors: compression_params.level out of range for the codec, a level
   with snappy, deflate for the gRPC exporter: the router refuses to start (exit 1)
   naming the problem.
"""
import argparse
import ctypes
import gzip
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Checks, Router, SinkHTTPServer, free_port, json_span, json_traces,  # noqa: E402
                     wait_for)
from test_otlp_http import Client, trace_request_pb  # noqa: E402

MAX_BODY = 4 << 20
WAIT = 30.0
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


# ---- codecs through the system libraries --------------------------------------------

def _lib(*names):
    for n in names:
        try:
            return ctypes.CDLL(n)
        except OSError:
            pass
    raise AssertionError("cannot load any of %s" % (names,))


ZSTD = _lib("libzstd.so.1", "libzstd.so")
SNAPPY = _lib("libsnappy.so.1", "libsnappy.so")
for f, res, args in [
        ("ZSTD_createCCtx", ctypes.c_void_p, []),
        ("ZSTD_freeCCtx", ctypes.c_size_t, [ctypes.c_void_p]),
        ("ZSTD_CCtx_setParameter", ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
        ("ZSTD_compressBound", ctypes.c_size_t, [ctypes.c_size_t]),
        ("ZSTD_compress2", ctypes.c_size_t,
         [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]),
        ("ZSTD_isError", ctypes.c_uint, [ctypes.c_size_t]),
        ("ZSTD_getFrameContentSize", ctypes.c_ulonglong, [ctypes.c_char_p, ctypes.c_size_t]),
        ("ZSTD_decompress", ctypes.c_size_t,
         [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t])]:
    getattr(ZSTD, f).restype, getattr(ZSTD, f).argtypes = res, args
SIZE_P = ctypes.POINTER(ctypes.c_size_t)
for f, args in [
        ("snappy_compress", [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, SIZE_P]),
        ("snappy_uncompress", [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, SIZE_P]),
        ("snappy_uncompressed_length", [ctypes.c_char_p, ctypes.c_size_t, SIZE_P])]:
    getattr(SNAPPY, f).restype, getattr(SNAPPY, f).argtypes = ctypes.c_int, args
SNAPPY.snappy_max_compressed_length.restype = ctypes.c_size_t
SNAPPY.snappy_max_compressed_length.argtypes = [ctypes.c_size_t]


def zstd_compress(data, level=3, content_size=True):
    cctx = ZSTD.ZSTD_createCCtx()
    ZSTD.ZSTD_CCtx_setParameter(cctx, 100, level)  # ZSTD_c_compressionLevel
    ZSTD.ZSTD_CCtx_setParameter(cctx, 200, 1 if content_size else 0)  # contentSizeFlag
    cap = ZSTD.ZSTD_compressBound(len(data))
    out = ctypes.create_string_buffer(cap)
    n = ZSTD.ZSTD_compress2(cctx, out, cap, data, len(data))
    ZSTD.ZSTD_freeCCtx(cctx)
    assert not ZSTD.ZSTD_isError(n)
    return out.raw[:n]


def zstd_decompress(data):
    size = ZSTD.ZSTD_getFrameContentSize(data, len(data))
    assert size < (1 << 32), "the exporter's zstd frames carry their size"
    out = ctypes.create_string_buffer(max(size, 1))
    n = ZSTD.ZSTD_decompress(out, size, data, len(data))
    assert not ZSTD.ZSTD_isError(n) and n == size
    return out.raw[:n]


def snappy_compress(data):
    n = ctypes.c_size_t(SNAPPY.snappy_max_compressed_length(len(data)))
    out = ctypes.create_string_buffer(n.value)
    assert SNAPPY.snappy_compress(data, len(data), out, ctypes.byref(n)) == 0
    return out.raw[:n.value]


def snappy_decompress(data):
    n = ctypes.c_size_t(0)
    assert SNAPPY.snappy_uncompressed_length(data, len(data), ctypes.byref(n)) == 0
    out = ctypes.create_string_buffer(max(n.value, 1))
    assert SNAPPY.snappy_uncompress(data, len(data), out, ctypes.byref(n)) == 0
    return out.raw[:n.value]


def raw_deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


ENCODERS = {
    "gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": zlib.compress,
    "deflate-raw": raw_deflate, "zlib": zlib.compress, "zstd": zstd_compress,
    "zstd-nosize": lambda d: zstd_compress(d, content_size=False),
    "snappy": snappy_compress, "identity": lambda d: d,
}
DECODERS = {None: lambda d: d, "gzip": gzip.decompress, "deflate": zlib.decompress,
            "zlib": zlib.decompress, "zstd": zstd_decompress, "snappy": snappy_decompress}


def gzip_bomb():
    """1 GiB of zeros, gzip level 9: about 1 MB."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [c.compress(zeros) for _ in range(1024)]
    parts.append(c.flush())
    return b"".join(parts)


# ---- the sink ----------------------------------------------------------------------

class RawSink:
    """Records (path, Content-Encoding, raw body) of every POST; answers 200 {}."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.lock:
                    sink.got.append((self.path, self.headers.get("Content-Encoding"), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = SinkHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self):
        with self.lock:
            return list(self.got)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def span_names(body):
    doc = json.loads(body)
    return [s["name"] for rs in doc.get("resourceSpans", []) for ss in rs.get("scopeSpans", [])
            for s in ss.get("spans", [])]


# ---- gRPC through curl ---------------------------------------------------------------

def grpc_call(port, encoding, message, compressed=True):
    """One unary call with a raw frame; returns (grpc-status, grpc-message)."""
    frame = bytes([1 if compressed else 0]) + len(message).to_bytes(4, "big") + message
    with tempfile.TemporaryDirectory() as d:
        body, hdrs = os.path.join(d, "body"), os.path.join(d, "headers")
        with open(body, "wb") as f:
            f.write(frame)
        cmd = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "20", "-X", "POST",
               "-H", "content-type: application/grpc", "-H", "te: trailers",
               "-H", "grpc-encoding: " + encoding, "--data-binary", "@" + body,
               "-D", hdrs, "-o", os.devnull,
               "http://127.0.0.1:%d%s" % (port, TRACE_EXPORT)]
        subprocess.run(cmd, check=True, timeout=30, stdin=subprocess.DEVNULL)
        with open(hdrs, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    fields = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            fields[k.strip().lower()] = v.strip()
    status = fields.get("grpc-status")
    return (int(status) if status is not None else None), fields.get("grpc-message", "")


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


# ---- the run -------------------------------------------------------------------------

EXPORTERS = {  # name -> (compression, level or None)
    "gzip": ("gzip", 12), "deflate": ("deflate", 9), "zlib": ("zlib", None),
    "zstd": ("zstd", 19), "snappy": ("snappy", None), "none": ("none", None),
}


def config(hp, gp, lp, sink):
    ex = ""
    for name, (comp, level) in EXPORTERS.items():
        ex += (f"  otlphttp/{name}:\n    traces_endpoint: http://127.0.0.1:{sink}/{name}\n"
               f"    encoding: json\n    compression: {comp}\n")
        if level is not None:
            ex += f"    compression_params:\n      level: {level}\n"
    for comp in ("snappy", "zstd"):
        ex += (f"  otlp/{comp}:\n    endpoint: 127.0.0.1:{lp}\n    tls:\n      insecure: true\n"
               f"    compression: {comp}\n")
    ex += (f"  otlphttp/loop:\n    traces_endpoint: http://127.0.0.1:{sink}/loop\n"
           f"    encoding: json\n    compression: none\n")
    names = ", ".join(["otlphttp/" + n for n in EXPORTERS] + ["otlp/snappy", "otlp/zstd"])
    return f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{hp}
        max_request_body_size: {MAX_BODY}
      grpc:
        endpoint: 127.0.0.1:{gp}
        max_recv_msg_size_mib: {MAX_BODY >> 20}
  otlp/loop:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{lp}
exporters:
{ex}service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [{names}]
    traces/loop:
      receivers: [otlp/loop]
      exporters: [otlphttp/loop]
"""


def run(args, check):
    sink = RawSink()
    hp, gp, lp = free_port(), free_port(), free_port()
    router = Router(args.bin, [args.plugin_dir], config(hp, gp, lp, sink.port))
    try:
        c = Client(hp)
        sent = []
        # 1. HTTP in, every encoding.
        for enc, encode in ENCODERS.items():
            for n in range(2):
                name = "http-%s-%d" % (enc, n)
                body = json.dumps(json_traces([json_span(name)], service="comp")).encode()
                header = "deflate" if enc == "deflate-raw" else "zstd" if enc == "zstd-nosize" \
                    else enc
                st, _, data = c.request("POST", "/v1/traces", encode(body),
                                        {"Content-Type": "application/json",
                                         "Content-Encoding": header})
                check(st == 200, "HTTP Content-Encoding %s (%s) -> 200 (got %d %r)"
                      % (header, enc, st, data[:100]))
                sent.append(name)
        # 2. gRPC in, every encoding.
        for enc, encode in [("gzip", gzip.compress), ("deflate", zlib.compress),
                            ("zstd", zstd_compress), ("snappy", snappy_compress)]:
            name = "grpc-%s" % enc
            code, msg = grpc_call(gp, enc, encode(trace_request_pb(name)))
            check(code == 0, "gRPC grpc-encoding %s -> OK (got %s %r)" % (enc, code, msg))
            sent.append(name)

        def by_path():
            out = {}
            for path, ce, body in sink.received():
                out.setdefault(path, []).append((ce, body))
            return out

        def count(path):
            total = 0
            for ce, body in by_path().get(path, []):
                try:
                    total += len(span_names(DECODERS[ce](body)))
                except Exception:  # noqa: BLE001 - counted as missing, checked below
                    pass
            return total

        ok = wait_for("every exporter to deliver every span",
                      lambda: all(count("/" + n) >= len(sent) for n in EXPORTERS) and
                      count("/loop") >= 2 * len(sent), WAIT)
        check(ok, "every exporter delivered the %d spans" % len(sent))
        got = by_path()
        for name, (comp, _) in EXPORTERS.items():
            want_ce = None if comp == "none" else comp
            names, ces = [], set()
            for ce, body in got.get("/" + name, []):
                ces.add(ce)
                names += span_names(DECODERS[ce](body))
            check(ces == {want_ce}, "otlphttp/%s sends Content-Encoding %s (got %s)"
                  % (name, want_ce, ces))
            check(sorted(names) == sorted(sent),
                  "otlphttp/%s: each span once (%d of %d)" % (name, len(names), len(sent)))
        loop = []
        for ce, body in got.get("/loop", []):
            loop += span_names(DECODERS[ce](body))
        check(sorted(loop) == sorted(sent * 2),
              "otlp snappy and zstd over gRPC into otlp/loop: each span twice (%d of %d)"
              % (len(loop), 2 * len(sent)))
        # The levels were applied: gzip level 12 makes smaller bodies than none.
        sizes = {n: sum(len(b) for _, b in got.get("/" + n, [])) for n in EXPORTERS}
        check(all(sizes[n] < sizes["none"] for n in EXPORTERS if n != "none"),
              "every codec made the bodies smaller than none: %s" % sizes)

        # 3. Bombs and bad input.
        before = vm_hwm_kb(router.proc.pid)
        bomb = gzip_bomb()
        check(len(bomb) < MAX_BODY, "the gzip bomb (%d bytes) is under the bound compressed"
              % len(bomb))
        st, _, data = c.request("POST", "/v1/traces", bomb,
                                {"Content-Type": "application/x-protobuf",
                                 "Content-Encoding": "gzip"})
        check(st == 413, "HTTP gzip bomb -> 413 (got %d %r)" % (st, data[:120]))
        code, msg = grpc_call(gp, "gzip", bomb)
        check(code == 8, "gRPC gzip bomb -> RESOURCE_EXHAUSTED (got %s %r)" % (code, msg))
        after = vm_hwm_kb(router.proc.pid)
        check(after - before < 32 * 1024,
              "peak RSS grew by %d kB with the bombs (VmHWM %d -> %d kB; bound 32 MiB)"
              % (after - before, before, after))
        huge = bytes([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x61])  # snappy: 4 GiB - 1
        st, _, data = c.request("POST", "/v1/traces", huge,
                                {"Content-Type": "application/x-protobuf",
                                 "Content-Encoding": "snappy"})
        check(st == 413, "HTTP snappy declaring 4 GiB -> 413 (got %d %r)" % (st, data[:120]))
        code, msg = grpc_call(gp, "snappy", huge)
        check(code == 8, "gRPC snappy declaring 4 GiB -> RESOURCE_EXHAUSTED (got %s %r)"
              % (code, msg))
        pb = trace_request_pb("bad")
        bad = [
            ("snappy", bytes([0x80, 0x80, 0x40, 0x00, 0x61, 0x62, 0x63, 0x64]),
             "declared length 1048576 is impossible"),
            ("gzip", gzip.compress(pb)[:-9], "gzip: invalid or truncated"),
            ("zstd", zstd_compress(pb)[:-5], "zstd"),
            ("zstd", b"\x28\xb5\x2f\xfd" + bytes(20), "zstd"),
            ("deflate", b"\x78\x9c" + bytes(30), "deflate"),
            ("snappy", snappy_compress(pb)[:-3], "snappy: invalid or truncated"),
        ]
        for enc, body, part in bad:
            st, _, data = c.request("POST", "/v1/traces", body,
                                    {"Content-Type": "application/x-protobuf",
                                     "Content-Encoding": enc})
            check(st == 400 and part.encode() in data,
                  "HTTP corrupt %s -> 400 naming %r (got %d %r)" % (enc, part, st, data[:160]))
            code, msg = grpc_call(gp, enc, body)
            check(code == 3, "gRPC corrupt %s -> INVALID_ARGUMENT (got %s %r)" % (enc, code, msg))
        st, _, data = c.request("POST", "/v1/traces", b"\xff\x06\x00\x00sNaPpY",
                                {"Content-Type": "application/x-protobuf",
                                 "Content-Encoding": "x-snappy-framed"})
        check(st == 400 and b"unsupported Content-Encoding" in data,
              "HTTP x-snappy-framed (not supported) -> 400 (got %d %r)" % (st, data[:120]))
        rc = router.stop()
        check(rc == 0, "router exits 0 after SIGTERM (got %s)" % rc)
    finally:
        router.cleanup()
        sink.stop()


def config_errors(args, check):
    cases = [
        ("otlphttp", "compression: gzip\n    compression_params:\n      level: 13",
         "invalid compression level 13 for gzip: 1 to 12, or -1 or 0 (default)"),
        ("otlphttp", "compression: zstd\n    compression_params:\n      level: 23",
         "invalid compression level 23 for zstd"),
        ("otlphttp", "compression: snappy\n    compression_params:\n      level: 1",
         "compression level 1 is not supported for snappy"),
        ("otlp", "compression: deflate", "deflate"),
    ]
    for exporter, extra, part in cases:
        endpoint = "http://127.0.0.1:9" if exporter == "otlphttp" else "127.0.0.1:9"
        text = f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{free_port()}
exporters:
  {exporter}:
    endpoint: {endpoint}
    {extra}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [{exporter}]
"""
        r = Router(args.bin, [args.plugin_dir], text, wait=False)
        try:
            rc = r.proc.wait(timeout=20)
            out = r.output()
        finally:
            r.cleanup()
        check(rc == 1 and part in out, "%s %r refused at start (exit %s, output names %r): %s"
              % (exporter, extra.replace("\n", " "), rc, part, out.strip()[-300:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()
    check = Checks()
    run(args, check)
    config_errors(args, check)
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
