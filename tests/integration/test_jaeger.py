#!/usr/bin/env python3
"""The jaeger receiver through the real binary, against real Jaeger senders.

  test_jaeger.py setup --src-dir tests/integration/node_jaeger --node-dir BUILD/jaeger-node
      npm ci of jaeger-client 3.19.0 and the Apache Thrift runtime (thrift 0.17.0)
      into the build tree (as test_otel_js.py does), then Debian's thrift-compiler
      generates Node code from the Jaeger IDL that jaeger-client ships
      (agent.thrift, jaeger.thrift, zipkincore.thrift) into <node-dir>/gen.

  test_jaeger.py clients --bin ... --plugin-dir ... --node-dir ...
      jaeger -> file (json). Four senders, none of them ours:
        jaeger-client over UDP (binary protocol, 128-bit trace ids),
        jaeger-client over HTTP (POST /api/traces, 64-bit trace ids),
        thrift-compiler's code + TCompactProtocol over UDP (the BuildKit case),
        the same with TBinaryProtocol over UDP.
      Every span, event, link, attribute (with its type), status, kind, id, time in
      ns, resource and scope is compared with what the collector's translator makes
      of the same input.

  test_jaeger.py bad --bin ... --plugin-dir ... --node-dir ...
      Truncated packets, fields of the wrong type, lengths past the end, nesting too
      deep, an unknown method, emitZipkinBatch, oversized packets; on HTTP a wrong
      content type, none, a malformed body, a wrong method and path, an oversized
      body. Each is counted in the receiver's metrics, logged (rate-limited), and
      answered 400/404/405/413 on HTTP; the router then still delivers a good packet.

  test_jaeger.py pushback --bin ... --plugin-dir ... --kit-dir ... --node-dir ...
      A slow exporter (testsink with a delay) behind the compact UDP port, a burst of
      packets: packets the pipeline refused are counted (packets_refused,
      spans_refused), and every packet the socket delivered is accounted for:
      delivered + refused + queue-full drops = received.

Every wait is bounded; python3 standard library only (plus node for the senders).
"""
import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Router, free_port, http, wait_for  # noqa: E402

NODE_TIMEOUT = 60.0
OUT_TIMEOUT = 15.0
T0_US = 1700000000000 * 1000
T0_NS = T0_US * 1000
IDL = "node_modules/jaeger-client/dist/src/jaeger-idl/thrift/agent.thrift"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------


def setup(args):
    import test_otel_js  # the same npm ci into the build tree, stamped by lock hash

    test_otel_js.setup(args)
    thrift = shutil.which("thrift")
    if not thrift:
        fail("thrift-compiler is not installed (deploy/debian-deps.sh --test installs it)")
    gen = os.path.join(args.node_dir, "gen")
    os.makedirs(gen, exist_ok=True)
    out = subprocess.run([thrift, "-r", "--gen", "js:node", "-out", gen, IDL], cwd=args.node_dir,
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        fail("thrift --gen js:node failed: " + out.stderr)
    shutil.copy(os.path.join(args.src_dir, "send.js"), os.path.join(args.node_dir, "send.js"))
    print("generated", sorted(os.listdir(gen)))
    return 0


def node(args, *argv, env=None):
    """Runs send.js; returns its manifest (the last stdout line, JSON)."""
    e = dict(os.environ)
    e.update(env or {})
    try:
        out = subprocess.run(["node", "send.js", *argv], cwd=args.node_dir, capture_output=True,
                             text=True, timeout=NODE_TIMEOUT, env=e)
    except subprocess.TimeoutExpired:
        fail("node send.js %s did not finish in %.0f s" % (" ".join(argv), NODE_TIMEOUT))
    if out.returncode != 0:
        fail("node send.js %s failed (%d): %s" % (" ".join(argv), out.returncode, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# What the collector makes of each sender's spans (OTLP/JSON as the file
# exporter writes it: ids in hex, 64-bit integers as strings, enums as numbers)
# ---------------------------------------------------------------------------


def s(v):
    return {"stringValue": v}


def d(v):
    return {"doubleValue": v}


def b(v):
    return {"boolValue": v}


def i(v):
    return {"intValue": str(v)}


def kv(k, v):
    return {"key": k, "value": v}


def ref_attr(t):
    return [kv("opentracing.ref_type", s(t))]


def client_expected(man):
    """jaeger-client's four spans (send.js viaClient), keyed by name."""
    sp = {x["name"]: x for x in man["spans"]}

    def tid(x):
        return x["traceId"].rjust(32, "0")

    def base(name, kind=None):
        x = sp[name]
        out = {"traceId": tid(x), "spanId": x["spanId"], "name": name,
               "startTimeUnixNano": str(x["startUs"] * 1000),
               "endTimeUnixNano": str((x["startUs"] + x["durationUs"]) * 1000)}
        if x["parentId"]:
            out["parentSpanId"] = x["parentId"]
        if kind is not None:
            out["kind"] = kind
        return out

    root = base("root-op", 2)
    root["attributes"] = [kv("sampler.type", s("const")), kv("sampler.param", b(True)),
                          kv("http.method", s("GET")), kv("retries", d(3)),
                          kv("ratio", d(0.25)), kv("cached", b(False))]
    root["events"] = [
        {"timeUnixNano": str(T0_NS + 1000000), "name": "cache-miss",
         "attributes": [kv("key", s("k1")), kv("size", d(7))]},
        {"timeUnixNano": str(T0_NS + 2000000), "attributes": [kv("message", s("no event field"))]},
    ]
    root["status"] = {}
    child = base("child-op", 3)
    child["status"] = {"message": "boom", "code": 2}  # error=true + otel.status_description
    follower = base("follower-op")
    # otel.status_code OK wins over http.status_code (which stays an attribute)
    follower["attributes"] = [kv("http.status_code", d(500))]
    follower["links"] = [{"traceId": tid(sp["root-op"]), "spanId": sp["root-op"]["spanId"],
                          "attributes": ref_attr("follows_from")}]
    follower["status"] = {"code": 1}
    linked = base("linked-op", 4)
    # a double http.status_code is not read as a code (the collector's codeFromAttr)
    linked["attributes"] = [kv("http.status_code", d(503))]
    linked["links"] = [{"traceId": tid(sp["follower-op"]), "spanId": sp["follower-op"]["spanId"],
                        "attributes": ref_attr("follows_from")}]
    linked["status"] = {}
    pt = man["processTags"]
    resource = {"attributes": [
        kv("service.name", s("jaeger-client-svc")), kv("deploy.env", s("it")),
        kv("build.number", d(42)), kv("build.ok", b(True)), kv("ip", s(pt["ip"]["value"])),
        kv("client-uuid", s(pt["client-uuid"]["value"])),
        kv("host.name", s(pt["hostname"]["value"])),
        kv("opencensus.exporterversion", s("Jaeger-Node-3.19.0"))]}
    return resource, {x["name"]: x for x in (root, child, follower, linked)}


def generated_expected():
    """send.js viaGenerated's batch, as the collector translates it."""
    tid = "a1a2a3a4a5a6a7a80102030405060708"
    solve = {
        "traceId": tid, "spanId": "1111111111111111", "name": "solve", "kind": 1,
        "startTimeUnixNano": str(T0_NS), "endTimeUnixNano": str(T0_NS + 1500 * 1000),
        "attributes": [
            kv("str", s("second value wins")),  # a key given twice: first place, last value
            kv("long", i(-2)), kv("big", i(9223372036854775807)), kv("dbl", d(-1.5)),
            kv("yes", b(True)), kv("no", b(False)), kv("bin", {"bytesValue": "AAEC/v8="}),
            # the Thrift path of the collector does not turn this into the scope
            kv("otel.library.name", s("github.com/moby/buildkit"))],
        "events": [
            {"timeUnixNano": str(T0_NS + 10000), "name": "exec started",
             "attributes": [kv("step", i(3))]},
            {"timeUnixNano": str(T0_NS + 20000)}],
        "status": {"message": "solve failed", "code": 2},
    }
    exec_ = {
        "traceId": tid, "spanId": "2222222222222222", "parentSpanId": "1111111111111111",
        "name": "exec", "kind": 5,
        "startTimeUnixNano": str(T0_NS + 100000), "endTimeUnixNano": str(T0_NS + 150000),
        # error=false stays; "404" (a string) on a consumer span is an error status
        "attributes": [kv("error", b(False)), kv("http.status_code", s("404"))],
        "links": [{"traceId": "00000000000000000000000000000009", "spanId": "3333333333333333",
                   "attributes": ref_attr("follows_from")}],
        "status": {"code": 2},
    }
    resource = {"attributes": [
        kv("service.name", s("buildkitd")), kv("pid", i(4242)), kv("host.name", s("builder-1")),
        kv("opencensus.exporterversion", s("Jaeger-Go-2.30.0"))]}
    return resource, {"solve": solve, "exec": exec_}


def read_requests(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def find_resource(reqs, service, marker=None):
    for req in reqs:
        for rs in req.get("resourceSpans", []):
            attrs = {a["key"]: a["value"] for a in rs.get("resource", {}).get("attributes", [])}
            if attrs.get("service.name") != s(service):
                continue
            if marker and attrs.get(marker[0]) != marker[1]:
                continue
            return rs
    return None


def compare(check, what, resource, spans, rs):
    if not check(rs is not None, "%s: a ResourceSpans arrived" % what):
        return
    check(rs["resource"] == resource,
          "%s: resource %s" % (what, json.dumps(rs["resource"]) if rs["resource"] != resource
                               else "as expected"))
    sss = rs.get("scopeSpans", [])
    check(len(sss) == 1 and sss[0].get("scope") == {},
          "%s: one ScopeSpans with an empty scope (got %s)" % (what, [x.get("scope") for x in sss]))
    compare_spans(check, what, spans, sss[0]["spans"] if sss else [])


def compare_spans(check, what, spans, have_list):
    got = {x["name"]: x for x in have_list}
    check(sorted(got) == sorted(spans), "%s: spans %s" % (what, sorted(got)))
    for name, want in spans.items():
        have = got.get(name)
        if have is None:
            continue
        for field in sorted(set(want) | set(have)):
            check(have.get(field) == want.get(field),
                  "%s/%s.%s = %s" % (what, name, field, json.dumps(have.get(field))
                                     if have.get(field) == want.get(field) else
                                     "%s, expected %s" % (json.dumps(have.get(field)),
                                                          json.dumps(want.get(field)))))


def clients(args):
    check = Checks()
    tmp = tempfile.mkdtemp(prefix="sy-jaeger-")
    out = os.path.join(tmp, "out.json")
    compact, binary, hport = free_udp_port(), free_udp_port(), free_port()
    config = f"""
receivers:
  jaeger:
    protocols:
      thrift_compact:
        endpoint: 127.0.0.1:{compact}
      thrift_binary:
        endpoint: 127.0.0.1:{binary}
        workers: 2
      thrift_http:
        endpoint: 127.0.0.1:{hport}
exporters:
  file:
    path: {out}
    flush_interval: 50ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {{receivers: [jaeger], exporters: [file]}}
"""
    router = Router(args.bin, [args.plugin_dir], config)
    try:
        man_udp = node(args, "client-udp", str(binary))
        man_http = node(args, "client-http", "http://127.0.0.1:%d/api/traces" % hport)
        check(not man_udp["errors"] and not man_http["errors"],
              "jaeger-client reported no error (%s %s)" % (man_udp["errors"], man_http["errors"]))
        node(args, "compact", str(compact), args.gen_dir)
        node(args, "binary", str(binary), args.gen_dir)

        def arrived():
            reqs = read_requests(out)
            uuids = [m["processTags"]["client-uuid"]["value"] for m in (man_udp, man_http)]
            found = [find_resource(reqs, "jaeger-client-svc", ("client-uuid", s(u)))
                     for u in uuids]
            gen = [rs for req in reqs for rs in req.get("resourceSpans", [])
                   if rs["resource"]["attributes"][0]["value"] == s("buildkitd")]
            return (found, gen) if all(found) and len(gen) >= 2 else None

        found, gen = wait_for("the four senders' spans in the file", arrived, OUT_TIMEOUT)
        for what, man, rs in (("jaeger-client UDP binary", man_udp, found[0]),
                              ("jaeger-client HTTP", man_http, found[1])):
            resource, spans = client_expected(man)
            compare(check, what, resource, spans, rs)
        check(len(found[0]["scopeSpans"][0]["spans"][0]["traceId"].lstrip("0")) > 16,
              "jaeger-client UDP: 128-bit trace id (traceIdHigh used)")
        resource, spans = generated_expected()
        for what, rs in zip(("thrift-compiler compact", "thrift-compiler binary"), gen):
            compare(check, what, resource, spans, rs)
        rc = router.stop()
        check(rc == 0, "router exit code %s" % rc)
    finally:
        router.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return report(check)


def report(check):
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    print("all checks passed")
    return 0


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def metrics(port):
    status, _, body = http("GET", "http://127.0.0.1:%d/metrics" % port)
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{")[0]
        out[name] = out.get(name, 0) + float(value)
    return out


def metric(port, name):
    return metrics(port).get("switchyard_" + name, 0)


# A tiny Thrift binary-protocol writer for malformed packets only; the good ones
# all come from real senders.
def tb_field(t, fid):
    return struct.pack(">bh", t, fid)


def tb_str(v):
    return struct.pack(">i", len(v)) + v


def tb_message(name, body, mtype=4):
    return struct.pack(">I", 0x80010000 | mtype) + tb_str(name) + struct.pack(">i", 0) + body


def bad_packets(good_compact, good_binary):
    """(protocol, description, bytes) of packets that must be refused."""
    process = tb_field(11, 1) + tb_str(b"svc") + b"\x00"
    deep = b""
    for _ in range(40):  # struct in struct in ... past the nesting bound
        deep = tb_field(12, 1) + deep
    deep += b"\x00" * 41
    out = []
    for cut in (1, 5, len(good_compact) // 2, len(good_compact) - 1):
        out.append(("compact", "compact packet cut at %d bytes" % cut, good_compact[:cut]))
    for cut in (3, len(good_binary) // 3, len(good_binary) - 1):
        out.append(("binary", "binary packet cut at %d bytes" % cut, good_binary[:cut]))
    out += [
        ("binary", "spans given as a string (wrong field type: Batch.spans missing)",
         tb_message(b"emitBatch", tb_field(12, 1) + tb_field(12, 1) + process +
                    tb_field(11, 2) + tb_str(b"xx") + b"\x00\x00")),
        ("binary", "a span whose traceIdLow is a string",
         tb_message(b"emitBatch", tb_field(12, 1) + tb_field(12, 1) + process +
                    tb_field(15, 2) + struct.pack(">bi", 12, 1) + tb_field(11, 1) +
                    tb_str(b"12345678") + b"\x00" + b"\x00\x00")),
        ("binary", "a string length past the end of the packet",
         tb_message(b"emitBatch", tb_field(12, 1) + tb_field(12, 1) + tb_field(11, 1) +
                    struct.pack(">i", 0x7fffffff) + b"abc")),
        ("binary", "a list count past the end of the packet",
         tb_message(b"emitBatch", tb_field(12, 1) + tb_field(12, 1) + process +
                    tb_field(15, 2) + struct.pack(">bi", 12, 100000000) + b"\x00")),
        ("binary", "structs nested 40 deep", tb_message(b"emitBatch", tb_field(12, 1) + deep)),
        ("binary", "an unknown method", tb_message(b"emitSomething", b"\x00")),
        ("binary", "emitZipkinBatch", tb_message(b"emitZipkinBatch", b"\x00")),
        ("binary", "a reply instead of a call", tb_message(b"emitBatch", b"\x00", mtype=2)),
        ("binary", "garbage", b"\xff" * 64),
        ("compact", "binary protocol on the compact port", good_binary),
        ("compact", "a compact header with a wrong version", b"\x82\x9f\x00\x00"),
        ("compact", "an overlong varint", good_compact[:2] + b"\xff" * 12),
        ("compact", "an empty packet", b""),
    ]
    return out


def bad(args):
    check = Checks()
    tmp = tempfile.mkdtemp(prefix="sy-jaeger-")
    out = os.path.join(tmp, "out.json")
    compact, binary, hport, mport = free_udp_port(), free_udp_port(), free_port(), free_port()
    config = f"""
receivers:
  jaeger:
    protocols:
      thrift_compact:
        endpoint: 127.0.0.1:{compact}
        max_packet_size: 2000
      thrift_binary:
        endpoint: 127.0.0.1:{binary}
      thrift_http:
        endpoint: 127.0.0.1:{hport}
        max_request_body_size: 4KiB
exporters:
  file:
    path: {out}
    flush_interval: 50ms
service:
  telemetry:
    logs:
      level: debug
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces: {{receivers: [jaeger], exporters: [file]}}
"""
    router = Router(args.bin, [args.plugin_dir], config)
    try:
        dump_c, dump_b = os.path.join(tmp, "c.bin"), os.path.join(tmp, "b.bin")
        node(args, "compact", str(free_udp_port()), args.gen_dir, env={"JAEGER_DUMP": dump_c})
        node(args, "binary", str(free_udp_port()), args.gen_dir, env={"JAEGER_DUMP": dump_b})
        with open(dump_c, "rb") as f:
            good_c = f.read()
        with open(dump_b, "rb") as f:
            good_b = f.read()
        ports = {"compact": compact, "binary": binary}
        packets = bad_packets(good_c, good_b)
        packets.append(("compact", "a packet over max_packet_size", good_c + b"\x00" * 2000))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        want = {"compact": 0, "binary": 0}
        for proto, what, data in packets:
            sock.sendto(data, ("127.0.0.1", ports[proto]))
            want[proto] += 1
            print("sent: %s (%d bytes) to %s" % (what, len(data), proto))
            time.sleep(0.01)
        for proto in ("compact", "binary"):
            name = "receiver_jaeger_thrift_%s_packets_invalid_total" % proto
            try:
                got = wait_for(name, lambda: metric(mport, name) >= want[proto] and
                               metric(mport, name), OUT_TIMEOUT)
            except AssertionError:
                got = metric(mport, name)
            check(got == want[proto], "%s = %s (expected %d)" % (name, got, want[proto]))
        check(metric(mport, "receiver_accepted_spans_total") == 0,
              "no span accepted from the bad packets")
        check(bool(re.search(r"warn\s+jaeger\s+thrift_\w+: dropped a packet", router.output())),
              "a warning was logged for the dropped packets")
        for reason in ("truncated", "required field Batch.spans is not set",
                       "a required field of Span is not set", "a size is larger than the data left",
                       "nested too deep", 'unknown method "emitSomething"',
                       "emitZipkinBatch is not supported", "not a call",
                       "not a compact protocol message", "unknown compact protocol version",
                       "malformed varint"):
            check(reason in router.output(), "the reason was logged (debug): %s" % reason)
        check(router.output().count("dropped a packet") <= 3,
              "the warnings are rate-limited (at most one per protocol and kind per 10 s)")

        url = "http://127.0.0.1:%d/api/traces" % hport
        cases = [
            ("POST", url, good_b[:40], {"Content-Type": "application/json"}, 400,
             "Unsupported content type: application/json"),
            ("POST", url, good_b[:40], {"Content-Type": ""}, 400, "Cannot parse content type"),
            ("POST", url, b"\x0c\x00\x01\xff", {"Content-Type": "application/x-thrift"}, 400,
             "Unable to process request body"),
            ("POST", url, b"", {"Content-Type": "application/vnd.apache.thrift.binary"}, 400,
             "Unable to process request body"),
            ("GET", url, None, {}, 405, ""),
            ("POST", url.replace("/api/traces", "/api/other"), b"x",
             {"Content-Type": "application/x-thrift"}, 404, ""),
            ("POST", url, b"\x00" * 5000, {"Content-Type": "application/x-thrift"}, 413, ""),
        ]
        for method, u, body, headers, status, text in cases:
            st, _, resp = http(method, u, body, headers)
            check(st == status and text in resp.decode("utf-8", "replace"),
                  "HTTP %s %s %s -> %d %r" % (method, u.rsplit("/", 1)[-1],
                                              headers.get("Content-Type"), st, resp[:80]))
        failed = metric(mport, "receiver_jaeger_thrift_http_failed_requests_total")
        check(failed == len(cases), "thrift_http failed requests counted: %s" % failed)

        # Still healthy: a good packet on each port, and a good HTTP body.
        sock.sendto(good_c, ("127.0.0.1", compact))
        sock.sendto(good_b, ("127.0.0.1", binary))
        sock.close()
        wait_for("the good packets after the bad ones",
                 lambda: len(read_requests(out)) >= 2, OUT_TIMEOUT)
        check(metric(mport, "receiver_accepted_spans_total") == 4,
              "the good packets' 4 spans were accepted")
        rc = router.stop()
        check(rc == 0, "router exit code %s after the bad input" % rc)
        config_errors(args, check)
        port_in_use(args, check)
    finally:
        router.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return report(check)


def config_errors(args, check):
    """`switchyard validate` refuses what the receiver cannot run, naming the key."""
    cases = [
        ("protocols: {grpc: {endpoint: nope}}", "protocols::grpc::endpoint"),
        ("protocols: {}", "must specify at least one protocol when using the Jaeger receiver"),
        ("protocols: {thrift_compact: {workers: 0}}",
         "protocols::thrift_compact::workers: must be between 1 and 256"),
        ("protocols: {thrift_binary: {max_packet_size: 70000}}",
         "protocols::thrift_binary::max_packet_size: must be between 1 and 65535"),
        ("protocols: {thrift_binary: {queue_size: 0}}",
         "protocols::thrift_binary::queue_size: must be between 1 and 1000000"),
        ("protocols: {thrift_http: {endpoint: nope}}", "protocols::thrift_http::endpoint"),
        ("protocols: {thrift_compact: {endpont: x}}", "endpont"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for body, want in cases:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write("receivers:\n  jaeger:\n    %s\nexporters:\n  nop:\nservice:\n"
                        "  pipelines:\n    traces: {receivers: [jaeger], exporters: [nop]}\n"
                        % body)
            out = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                                  args.plugin_dir], capture_output=True, text=True, timeout=30)
            check(out.returncode != 0 and want in out.stderr + out.stdout,
                  "validate refuses %s: %s" % (body, (out.stderr + out.stdout).strip()))


def port_in_use(args, check):
    """A UDP port already bound fails the startup, naming the address; nothing hangs."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        config = f"""
receivers:
  jaeger:
    protocols:
      thrift_binary:
        endpoint: 127.0.0.1:{free_udp_port()}
      thrift_compact:
        endpoint: 127.0.0.1:{port}
exporters:
  nop:
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {{receivers: [jaeger], exporters: [nop]}}
"""
        router = Router(args.bin, [args.plugin_dir], config, wait=False)
        try:
            rc = router.proc.wait(timeout=30)
            out = router.output()
        except subprocess.TimeoutExpired:
            rc, out = None, router.output()
        finally:
            router.cleanup()
    check(rc not in (0, None) and "listen udp 127.0.0.1:%d" % port in out,
          "a UDP port in use fails the startup (exit %s): %s" %
          (rc, [x for x in out.splitlines() if "listen udp" in x]))


# ---------------------------------------------------------------------------
# Push-back
# ---------------------------------------------------------------------------


def pushback(args):
    check = Checks()
    tmp = tempfile.mkdtemp(prefix="sy-jaeger-")
    sink_report = os.path.join(tmp, "sink.txt")
    compact, mport = free_udp_port(), free_port()
    config = f"""
receivers:
  jaeger:
    protocols:
      thrift_compact:
        endpoint: 127.0.0.1:{compact}
        queue_size: 50
        workers: 2
        socket_buffer_size: 4MiB
exporters:
  testsink:
    delay: 20ms
    report_path: {sink_report}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces: {{receivers: [jaeger], exporters: [testsink]}}
"""
    router = Router(args.bin, [args.kit_dir, args.plugin_dir], config)
    try:
        dump = os.path.join(tmp, "c.bin")
        node(args, "compact", str(free_udp_port()), args.gen_dir, env={"JAEGER_DUMP": dump})
        with open(dump, "rb") as f:
            packet = f.read()  # 2 spans, from thrift-compiler's code
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = 0
        pfx = "receiver_jaeger_thrift_compact_"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for _ in range(200):
                sock.sendto(packet, ("127.0.0.1", compact))
                sent += 1
            time.sleep(0.005)
            if metric(mport, pfx + "packets_refused_total") >= 20:
                break
        sock.close()
        print("sent %d packets" % sent)

        def settled():
            m = metrics(mport)
            got = m.get("switchyard_" + pfx + "packets_received_total", 0)
            done = (m.get("switchyard_receiver_accepted_spans_total", 0) / 2 +
                    m.get("switchyard_" + pfx + "packets_refused_total", 0) +
                    m.get("switchyard_" + pfx + "packets_dropped_queue_full_total", 0) +
                    m.get("switchyard_" + pfx + "packets_invalid_total", 0))
            return m if got and got == done else None

        m = wait_for("every received packet accepted or counted as dropped", settled, 60)
        g = lambda n: m.get("switchyard_" + pfx + n, 0)  # noqa: E731
        print({k: v for k, v in m.items() if "jaeger" in k or "accepted_spans" in k})
        check(g("packets_refused_total") > 0,
              "packets refused by the pipeline were counted: %d" % g("packets_refused_total"))
        check(g("spans_refused_total") == 2 * g("packets_refused_total"),
              "spans_refused = 2 x packets_refused (%d)" % g("spans_refused_total"))
        check(g("packets_invalid_total") == 0, "no packet counted invalid")
        check(g("packets_received_total") <= sent, "received <= sent")
        check("the pipeline is full (UDP cannot push back)" in router.output() and
              "queue of 50 packets is full" in router.output(),
              "both kinds of drop were logged at warn")
        accepted = m.get("switchyard_receiver_accepted_spans_total", 0)
        rc = router.stop(timeout=120)
        check(rc == 0, "router exit code %s" % rc)
        with open(sink_report) as f:
            fields = dict(x.split("=") for x in f.read().split())
        check(int(fields["items"]) == accepted,
              "the sink got every accepted span: %s of %d" % (fields["items"], accepted))
    finally:
        router.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return report(check)


# ---------------------------------------------------------------------------
# grpc: jaeger.api_v2.CollectorService/PostSpans from @grpc/grpc-js
# ---------------------------------------------------------------------------

T0_S = 1700000000


def grpc_node(args, mode, port):
    env = dict(os.environ, NODE_PATH=os.path.join(args.sinks_node_dir, "node_modules"))
    script = os.path.join(args.src_dir, "grpc_send.js")
    try:
        out = subprocess.run(["node", script, mode, str(port), args.proto_dir],
                             capture_output=True, text=True, timeout=NODE_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        fail("node grpc_send.js %s did not finish in %.0f s" % (mode, NODE_TIMEOUT))
    if out.returncode != 0:
        fail("node grpc_send.js %s failed (%d): %s" % (mode, out.returncode, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def grpc_expected():
    """What the collector's ProtoToTraces makes of grpc_send.js's request."""
    def ns(sec, nanos=0):
        return str(sec * 1000000000 + nanos)

    root = {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "1111111111111111",
            "name": "root", "kind": 2, "traceState": "k=v",
            "startTimeUnixNano": ns(T0_S, 123456789),
            "endTimeUnixNano": ns(T0_S + 1, 123456789 + 500),
            "attributes": [kv("s", s("v")), kv("b", b(True)), kv("i", i(-42)), kv("f", d(2.5)),
                           kv("bin", {"bytesValue": "AAEC/w=="}),
                           kv("otel.library.name", s("oldlib"))],
            "events": [{"timeUnixNano": ns(T0_S, 200), "name": "ev1",
                        "attributes": [kv("level", s("info")), kv("n", i(3))]},
                       {"timeUnixNano": ns(T0_S + 1)}],
            "status": {}}
    child = {"traceId": root["traceId"], "spanId": "2222222222222222", "name": "child",
             "parentSpanId": "1111111111111111", "kind": 3,
             "startTimeUnixNano": ns(T0_S + 2), "endTimeUnixNano": ns(T0_S + 2, 1000),
             "links": [{"traceId": "00000000000000000a0b0c0d0e0f0001",
                        "spanId": "3333333333333333", "attributes": ref_attr("follows_from")}],
             "status": {"message": "boom", "code": 2}}
    own = {"traceId": "00000000000000000000000000000077", "spanId": "4444444444444444",
           "name": "own-process", "kind": 4,
           "startTimeUnixNano": ns(T0_S + 3, 5), "endTimeUnixNano": ns(T0_S + 5, 5),
           "links": [{"traceId": "00000000000000000000000000000077",
                      "spanId": "5555555555555555", "attributes": ref_attr("follows_from")}],
           "status": {}}
    main_res = {"attributes": [kv("service.name", s("grpc-svc")), kv("proc.int", i(7)),
                               kv("host.name", s("h1")),
                               kv("opencensus.exporterversion", s("Jaeger-Go-2.30"))]}
    own_res = {"attributes": [kv("service.name", s("other-svc")), kv("region", s("eu"))]}
    return [(main_res, [({"name": "lib-a", "version": "1.2.3"}, {"root": root}),
                        ({}, {"child": child})]),
            (own_res, [({}, {"own-process": own})])]


def grpc(args):
    check = Checks()
    tmp = tempfile.mkdtemp(prefix="sy-jaeger-")
    out = os.path.join(tmp, "out.json")
    gport, mport = free_port(), free_port()
    config = f"""
receivers:
  jaeger:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{gport}
exporters:
  file:
    path: {out}
    flush_interval: 50ms
service:
  telemetry:
    logs:
      level: debug
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces: {{receivers: [jaeger], exporters: [file]}}
"""
    router = Router(args.bin, [args.plugin_dir], config)
    try:
        res = grpc_node(args, "good", gport)["good"]
        check(res["code"] == 0 and res.get("response") == {},
              "PostSpans answered OK with an empty PostSpansResponse (%s)" % res)

        def arrived():
            reqs = read_requests(out)
            return reqs if any(find_resource(reqs, svc) for svc in ("grpc-svc",)) and \
                find_resource(reqs, "other-svc") else None

        reqs = wait_for("the PostSpans spans in the file", arrived, OUT_TIMEOUT)
        check(len(reqs) == 1 and len(reqs[0]["resourceSpans"]) == 2,
              "one request with two ResourceSpans (the span's own process regrouped)")
        for (resource, scopes), svc in zip(grpc_expected(), ("grpc-svc", "other-svc")):
            rs = find_resource(reqs, svc)
            check(rs["resource"] == resource, "grpc %s: resource %s" % (
                svc, json.dumps(rs["resource"]) if rs["resource"] != resource else "as expected"))
            sss = rs.get("scopeSpans", [])
            check([x.get("scope") for x in sss] == [sc for sc, _ in scopes],
                  "grpc %s: scopes %s" % (svc, [x.get("scope") for x in sss]))
            for (scope, spans), ss in zip(scopes, sss):
                compare_spans(check, "grpc %s/%s" % (svc, scope.get("name", "-")), spans,
                              ss["spans"])

        bad_res = {x["case"]: x for x in grpc_node(args, "bad", gport)["bad"]}
        for case, code, text in (
                ("garbage", 3, "grpc: error unmarshalling request: proto: cannot decode"),
                ("unknown-method", 12,
                 "unknown method GetSpans for service jaeger.api_v2.CollectorService"),
                ("unknown-service", 12, "unknown service jaeger.api_v2.QueryService"),
                ("short-span-id", 3, "invalid length for SpanID")):
            r = bad_res.get(case, {})
            check(r.get("code") == code and text in r.get("details", ""),
                  "grpc %s: status %s %r" % (case, r.get("code"), r.get("details")))
        for name, want in (("receiver_jaeger_grpc_invalid_requests_total", 2),
                           ("receiver_jaeger_grpc_calls_total", 5),
                           ("receiver_jaeger_grpc_failed_calls_total", 4)):
            try:
                got = wait_for(name, lambda: metric(mport, name) == want and want, OUT_TIMEOUT)
            except AssertionError:
                got = metric(mport, name)
            check(got == want, "%s = %s (expected %d)" % (name, got, want))
        rc = router.stop()
        check(rc == 0, "router exit code %s" % rc)
        check("grpc: PostSpans refused: invalid length for SpanID" in router.output() or
              "grpc: PostSpans refused: proto: cannot decode" in router.output(),
              "the refused PostSpans is logged (rate-limited warning)")
        check(len(read_requests(out)) == 1, "the refused calls delivered nothing")
    finally:
        router.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    grpc_pushback(args, check)
    return report(check)


def grpc_pushback(args, check):
    """A slow exporter: PostSpans is answered RESOURCE_EXHAUSTED once the pipeline's
    queue is full, as the otlp receiver answers, and every accepted span arrives."""
    tmp = tempfile.mkdtemp(prefix="sy-jaeger-")
    sink_report = os.path.join(tmp, "sink.txt")
    gport, mport = free_port(), free_port()
    config = f"""
receivers:
  jaeger:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{gport}
exporters:
  testsink:
    delay: 15ms
    report_path: {sink_report}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces: {{receivers: [jaeger], exporters: [testsink]}}
"""
    router = Router(args.bin, [args.kit_dir, args.plugin_dir], config)
    try:
        res = grpc_node(args, "flood", gport)["flood"]
        check(res["code"] == 8 and "queue is full" in res["details"] and res["calls"] > 1,
              "flood: call %d answered %s %r" % (res["calls"], res["code"], res["details"]))
        accepted = metric(mport, "receiver_accepted_spans_total")
        check(accepted == 3 * (res["calls"] - 1),
              "accepted spans %d = 3 x the %d calls answered OK" % (accepted, res["calls"] - 1))
        rc = router.stop(timeout=120)
        check(rc == 0, "router exit code %s" % rc)
        with open(sink_report) as f:
            fields = dict(x.split("=") for x in f.read().split())
        check(int(fields["items"]) == accepted,
              "the sink got every accepted span: %s of %d" % (fields["items"], accepted))
    finally:
        router.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["setup", "clients", "bad", "pushback", "grpc"])
    ap.add_argument("--sinks-node-dir", help="grpc: the otlp sinks' node dir (@grpc/grpc-js)")
    ap.add_argument("--proto-dir", help="grpc: the repository's proto/")
    ap.add_argument("--bin")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--kit-dir")
    ap.add_argument("--src-dir")
    ap.add_argument("--node-dir", required=True)
    args = ap.parse_args()
    args.node_dir = os.path.abspath(args.node_dir)
    args.gen_dir = os.path.join(args.node_dir, "gen")
    if args.mode == "setup":
        return setup(args)
    if args.mode == "grpc":
        return grpc(args)
    if not os.path.exists(os.path.join(args.gen_dir, "Agent.js")):
        fail("%s/Agent.js is missing: run the setup mode (integration.jaeger.setup) first" %
             args.gen_dir)
    try:
        return {"clients": clients, "bad": bad, "pushback": pushback}[args.mode](args)
    except AssertionError as e:
        fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
