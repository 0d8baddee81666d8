#!/usr/bin/env python3
"""The compressed twin through the binary: what clients compressed goes out as it came.

    test_compression_twin.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

A request that arrives gzip- or zstd-compressed keeps its compressed bytes beside
its decompressed ones (ABI 1.7 batch_set_compressed); an exporter that compresses
the same way sends those bytes instead of compressing again, as long as nothing
changed the content (batch_compressed_pieces). One router:

  otlp (HTTP + gRPC) -> pipeline traces/as_is (no processor)
                          -> otlphttp/gz (gzip), otlphttp/zs (zstd) -> Python sink
                     -> pipeline traces/batched (batch, merges)
                          -> otlphttp/bgz (gzip) -> Python sink
                          -> otlp/grpc_gz (gRPC, gzip) -> otlp/loop -> otlphttp/loop (none)
  otlp/solo (HTTP)   -> pipeline traces/changed (attributes: insert, on the only
                          reference: the view edits the batch in place)
                          -> otlphttp/mod (gzip) -> Python sink

Checked, field by field:
1. traces/as_is: a gzip request goes to otlphttp/gz byte for byte as the client
   sent it (the same gzip member), and is recompressed for otlphttp/zs (zstd,
   decoding to the same request); a zstd request likewise the other way round;
   an uncompressed request is compressed by both; each span once on each path.
2. traces/batched: requests merged by the batch processor go out as gzip members
   back to back (more members than bodies), decompressing to every span once; a
   merge of gzip and uncompressed requests is compressed again (one member).
3. gRPC: gzip-compressed messages merged and forwarded over gRPC with
   grpc-encoding gzip to the router's own otlp/loop receiver: every span arrives.
4. traces/changed: the attributes processor's edit is in every body otlphttp/mod
   sends (the twin of the unchanged bytes is never used for changed content).
5. The exporters' counter switchyard_exporter_sent_requests_compressed_as_received_total:
   > 0 for otlphttp/gz, otlphttp/bgz and otlp/grpc_gz, 0 for otlphttp/mod.
"""
import argparse
import ctypes
import gzip
import os
import sys
import time
import urllib.request
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Checks, Router, free_port, wait_for  # noqa: E402
from test_compression import RawSink, ZSTD, grpc_call, zstd_compress  # noqa: E402
from test_otlp_exporters import pb_fields  # noqa: E402
from test_otlp_http import Client, trace_request_pb  # noqa: E402

WAIT = 30.0
ZSTD.ZSTD_findFrameCompressedSize.restype = ctypes.c_size_t
ZSTD.ZSTD_findFrameCompressedSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def gzip_members(data):
    """The gzip members of `data`, each decompressed (zlib stops at a member's end)."""
    out = []
    while data:
        d = zlib.decompressobj(31)
        out.append(d.decompress(data) + d.flush())
        data = d.unused_data
    return out


def zstd_frames(data):
    """Every zstd frame of `data`, decompressed."""
    out = []
    while data:
        n = ZSTD.ZSTD_findFrameCompressedSize(data, len(data))
        assert not ZSTD.ZSTD_isError(n), "not a zstd frame"
        frame, data = data[:n], data[n:]
        size = ZSTD.ZSTD_getFrameContentSize(frame, len(frame))
        assert size < (1 << 32), "the frame carries its size"
        buf = ctypes.create_string_buffer(max(size, 1))
        got = ZSTD.ZSTD_decompress(buf, size, frame, len(frame))
        assert not ZSTD.ZSTD_isError(got) and got == size
        out.append(buf.raw[:got])
    return out


def spans_of(request):
    """(name, [attribute keys]) of every span of an encoded ExportTraceServiceRequest."""
    out = []
    for num, _, rs in pb_fields(request):
        if num != 1:
            continue
        for num2, _, ss in pb_fields(rs):
            if num2 != 2:
                continue
            for num3, _, span in pb_fields(ss):
                if num3 != 2:
                    continue
                name, keys = None, []
                for f, _, v in pb_fields(span):
                    if f == 5:
                        name = v.decode()
                    elif f == 9:
                        keys += [v2.decode() for f2, _, v2 in pb_fields(v) if f2 == 1]
                out.append((name, keys))
    return out


def config(hp, gp, lp, sp, sink, metrics_port):
    def http_ex(name, comp):
        return (f"  otlphttp/{name}:\n    traces_endpoint: http://127.0.0.1:{sink}/{name}\n"
                f"    compression: {comp}\n    retry_on_failure:\n      enabled: false\n")
    return f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{hp}
      grpc:
        endpoint: 127.0.0.1:{gp}
  otlp/loop:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{lp}
  otlp/solo:
    protocols:
      http:
        endpoint: 127.0.0.1:{sp}
processors:
  batch:
    timeout: 300ms
    send_batch_size: 100000
  attributes/mod:
    actions:
      - key: twin.changed
        value: "yes"
        action: insert
exporters:
{http_ex("gz", "gzip")}{http_ex("zs", "zstd")}{http_ex("bgz", "gzip")}{http_ex("mod", "gzip")}\
{http_ex("loop", "none")}  otlp/grpc_gz:
    endpoint: 127.0.0.1:{lp}
    tls:
      insecure: true
    compression: gzip
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces/as_is:
      receivers: [otlp]
      exporters: [otlphttp/gz, otlphttp/zs]
    traces/batched:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlphttp/bgz, otlp/grpc_gz]
    traces/changed:
      receivers: [otlp/solo]
      processors: [attributes/mod]
      exporters: [otlphttp/mod]
    traces/loop:
      receivers: [otlp/loop]
      exporters: [otlphttp/loop]
"""


def twin_count(metrics_port, exporter):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                  timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("switchyard_exporter_sent_requests_compressed_as_received_total{") and \
                'exporter="%s"' % exporter in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def run(args, check):
    sink = RawSink()
    hp, gp, lp, sp, mp = free_port(), free_port(), free_port(), free_port(), free_port()
    router = Router(args.bin, [args.plugin_dir], config(hp, gp, lp, sp, sink.port, mp))
    try:
        c, solo = Client(hp), Client(sp)
        sent = {}  # span name -> the body as sent, and its Content-Encoding

        def post(name, encoding):
            pb = trace_request_pb(name)
            body = {"gzip": lambda d: gzip.compress(d, 6), "zstd": zstd_compress,
                    "identity": lambda d: d}[encoding](pb)
            hdrs = {"Content-Type": "application/x-protobuf"}
            if encoding != "identity":
                hdrs["Content-Encoding"] = encoding
            st, _, data = c.request("POST", "/v1/traces", body, hdrs)
            check(st == 200, "%s request %s -> 200 (got %d %r)" % (encoding, name, st, data[:80]))
            st, _, data = solo.request("POST", "/v1/traces", body, hdrs)
            check(st == 200, "%s request %s to otlp/solo -> 200 (got %d %r)"
                  % (encoding, name, st, data[:80]))
            sent[name] = (encoding, body, pb)

        # Phase 1: gzip only, so that batch merges gzip twins only.
        for i in range(6):
            post("gz-%d" % i, "gzip")
        ok = wait_for("the first merges", lambda: len(sink.received()) >= 6 * 3, WAIT)
        check(ok, "the first requests were exported")
        time.sleep(0.6)  # past the batch timeout: the gzip-only merge is out
        # Phase 2: zstd, uncompressed and gzip mixed.
        for i in range(4):
            post("zs-%d" % i, "zstd")
            post("id-%d" % i, "identity")
            post("gz2-%d" % i, "gzip")
        code, msg = grpc_call(gp, "gzip", gzip.compress(trace_request_pb("grpc-gz")))
        check(code == 0, "gRPC gzip call -> OK (got %s %r)" % (code, msg))
        sent["grpc-gz"] = ("gzip", None, trace_request_pb("grpc-gz"))
        names = sorted(sent)
        solo_names = sorted(n for n in sent if n != "grpc-gz")

        def bodies(path):
            return [(ce, body) for p, ce, body in sink.received() if p == "/" + path]

        def decoded(path):
            out = []
            for ce, body in bodies(path):
                parts = gzip_members(body) if ce == "gzip" else \
                    zstd_frames(body) if ce == "zstd" else [body]
                out.append((ce, body, parts))
            return out

        def names_at(path):
            return sorted(n for _, _, parts in decoded(path) for p in parts
                          for n, _ in spans_of(p))

        ok = wait_for("every path to have every span",
                      lambda: all(names_at(p) == names for p in ("gz", "zs", "bgz", "loop"))
                      and names_at("mod") == solo_names, WAIT)
        for p in ("gz", "zs", "bgz", "loop"):
            check(names_at(p) == names, "/%s: every span exactly once (%s)" % (p, names_at(p)))
        check(names_at("mod") == solo_names, "/mod: every span exactly once (%s)"
              % names_at("mod"))
        check(ok, "every exporter delivered")

        # 1. As it came: the gzip body itself on /gz, recompressed on /zs.
        gz_bodies = {body for ce, body in bodies("gz")}
        zs_bodies = {body for ce, body in bodies("zs")}
        for name, (enc, body, pb) in sent.items():
            if body is None:
                continue
            if enc == "gzip":
                check(body in gz_bodies, "%s: otlphttp/gz sent the client's gzip bytes" % name)
            elif enc == "zstd":
                check(body in zs_bodies, "%s: otlphttp/zs sent the client's zstd bytes" % name)
                check(body not in gz_bodies, "%s: not sent as zstd to a gzip exporter" % name)
        check(all(ce == "gzip" for ce, _ in bodies("gz")) and
              all(ce == "zstd" for ce, _ in bodies("zs")),
              "each exporter's Content-Encoding is its own")
        check(all(len(parts) == 1 for _, _, parts in decoded("gz")),
              "unmerged requests: one gzip member a body")
        # 2. Merged: several members a body for the gzip-only merge.
        members = [len(parts) for _, _, parts in decoded("bgz")]
        check(max(members) >= 2, "a merge of gzip requests goes out as gzip members back to "
              "back (members per body: %s)" % members)
        check(any(n == 1 for n in members) and len(members) >= 2,
              "a merge with uncompressed or zstd requests is compressed again, one member "
              "(members per body: %s)" % members)
        # 4. The change is in every body of /mod.
        changed = [keys for _, _, parts in decoded("mod") for p in parts
                   for _, keys in spans_of(p)]
        check(changed and all("twin.changed" in keys for keys in changed),
              "every span sent by otlphttp/mod carries the attributes processor's edit")
        # 5. The counters.
        for ex, want in (("otlphttp/gz", True), ("otlphttp/bgz", True), ("otlp/grpc_gz", True),
                         ("otlphttp/mod", False)):
            n = twin_count(mp, ex)
            check(n is not None and ((n > 0) if want else (n == 0)),
                  "%s sent %s requests as received (%s)" % (ex, "some" if want else "no", n))
        rc = router.stop()
        check(rc == 0, "router exits 0 after SIGTERM (got %s)" % rc)
    finally:
        router.cleanup()
        sink.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()
    check = Checks()
    run(args, check)
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
