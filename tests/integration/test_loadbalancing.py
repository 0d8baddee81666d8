#!/usr/bin/env python3
"""The loadbalancing exporter through the real binary: one front router (otlp receiver
-> loadbalancing) and three backend routers (otlp gRPC receiver -> file exporter) on
free loopback ports.

    test_loadbalancing.py CASE --bin BUILD/bin/switchyard --plugin-dir BUILD/lib/switchyard/plugins

CASE is one of:
  route   many traces, the spans of each spread over several requests (and two
          resources): every span arrives once, unchanged, and every span of a trace on
          exactly the backend an independent reimplementation of the collector's ring
          (below) computes.
  resize  the front restarted with the last backend removed: exactly the traces the
          reference predicts move (all of them the removed backend's, about 1/3), the
          others stay; restarted with all three again: every trace is back where it was.
  down    a backend is stopped: its traces are retried (not re-routed) and delivered
          when it comes back on its port; the other backends get theirs meanwhile.
  down_mid  a backend stopped in the middle of its traces: their later spans are
          retried, not re-routed, and every span of a trace ends on its one backend.
  dns     the dns resolver on `localhost` with the port of one backend: the addresses
          libc gives for localhost are the ring (127.0.0.1:P and, where localhost also
          has ::1, [::1]:P, where nothing listens: those traces wait in their queue).
  dns_change  the dns answer changes (a private mount namespace with the test's own
          /etc/hosts; exit 77, a ctest skip, where unshare -m is not permitted): the
          ring follows, exactly the removed address's traces move.
  signals metrics routed by service.name, logs by trace id.
  keys    traces by `attributes` and by `service`, metrics by `metric`.
  config  configuration errors with the collector's messages.

The reference ring is written from the collector's documented algorithm
(opentelemetry-collector-contrib exporter/loadbalancingexporter/consistent_hashing.go:
positionsFor = crc32-IEEE(endpoint + byte(i)) % 36000 for i < 100, positions taken by an
earlier endpoint skipped, sorted; endpointFor = crc32-IEEE(key) % 36000 looked up by its
recursive bsearch), with its own table-driven CRC-32, and first checked against the
collector's test vectors (consistent_hashing_test.go).
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Checks, Router, free_port, http, json_span, post_json, wait_for  # noqa: E402

WAIT = 20.0

# ---- the reference ring ---------------------------------------------------------------

def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32_ieee(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


MAX_POSITIONS = 36000


def ring_items(endpoints, weight=100):
    """positionsForEndpoints: [(pos, endpoint)] sorted by pos."""
    taken = set()
    items = []
    for ep in endpoints:
        for i in range(weight):
            pos = crc32_ieee(ep.encode() + bytes([i & 0xFF])) % MAX_POSITIONS
            if pos in taken:
                continue
            taken.add(pos)
            items.append((pos, ep))
    items.sort()
    return items


def bsearch(pos, left, right):
    """The collector's bsearch, as written there."""
    if left[-1][0] == pos:
        return left[-1]
    if right[0][0] == pos:
        return right[0]
    if pos > right[-1][0]:
        return left[0]
    if pos > left[-1][0]:
        if len(right) == 1:
            return right[0]
        return bsearch(pos, right[:len(right) // 2], right[len(right) // 2:])
    if len(left) == 1:
        return left[0]
    return bsearch(pos, left[:len(left) // 2], left[len(left) // 2:])


class Ring:
    def __init__(self, endpoints, weight=100):
        self.items = ring_items(sorted(endpoints), weight)

    def endpoint_for(self, key):
        pos = crc32_ieee(key) % MAX_POSITIONS
        n = len(self.items)
        return bsearch(pos, self.items[:n // 2], self.items[n // 2:])[1]


def check_reference():
    """The reference against the collector's own test vectors."""
    assert ring_items(["endpoint-1"], 5) == [(p, "endpoint-1") for p in
                                             (1401, 4175, 14133, 17836, 21667)]
    assert ring_items(["endpoint-1", "endpoint-1"], 5) == ring_items(["endpoint-1"], 5)
    two = [(1401, 1), (4175, 1), (10240, 2), (14133, 1), (15002, 2), (17836, 1), (21263, 2),
           (21667, 1), (26806, 2), (27020, 2)]
    assert ring_items(["endpoint-1", "endpoint-2"], 5) == [(p, "endpoint-%d" % e)
                                                          for p, e in two]
    r = Ring(["endpoint-1", "endpoint-2"])
    assert len(r.items) == 200
    for key, want in ((bytes([1, 2, 0, 0]), "endpoint-1"), (bytes([128, 128, 0, 0]), "endpoint-2"),
                      (b"ad-service-7", "endpoint-1"), (b"get-recommendations-1", "endpoint-2")):
        assert r.endpoint_for(key) == want, (key, r.endpoint_for(key), want)
    items = [(p, str(p)) for p in (14, 25, 33, 47, 56, 121, 134, 158, 240, 270, 350)]
    for req, want in ((85, 121), (14, 14), (351, 14), (270, 270), (271, 350)):
        got = bsearch(req, items[:len(items) // 2], items[len(items) // 2:])[0]
        assert got == want, (req, got, want)
    print("ok   the reference ring reproduces the collector's test vectors")


# ---- routers ----------------------------------------------------------------------------

class Backend:
    """A router: otlp gRPC receiver on `port` -> file exporter (OTLP/JSON lines)."""

    def __init__(self, args, port, tag):
        self.args, self.port, self.tag = args, port, tag
        self.router = None
        self.routers = []
        self.paths = []
        self._spawn()

    def _spawn(self):
        d = tempfile.mkdtemp(prefix="sy-lb-%s-" % self.tag)
        self.path = os.path.join(d, "spans.json")
        cfg = "\n".join([
            "receivers:",
            "  otlp:",
            "    protocols:",
            "      grpc:",
            "        endpoint: 127.0.0.1:%d" % self.port,
            "exporters:",
            "  file:",
            "    path: %s" % self.path,
            "    flush_interval: 100ms",
            "service:",
            "  telemetry: {metrics: {level: none}}",
            "  pipelines:",
            "    traces: {receivers: [otlp], exporters: [file]}",
            "    metrics: {receivers: [otlp], exporters: [file]}",
            "    logs: {receivers: [otlp], exporters: [file]}",
            ""])
        self.router = Router(self.args.bin, [self.args.plugin_dir], cfg)
        self.routers.append(self.router)
        self.paths.append(self.path)

    def restart(self):
        self._spawn()

    def stop(self):
        self.router.stop()

    def requests(self):
        """Every request written so far by every run of this backend, decoded."""
        out = []
        for path in self.paths:
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            for line in text.split("\n"):
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue  # a line still being written
        return out

    def spans(self):
        """Every span written so far by every run of this backend: (trace id, span id,
        name, service, attributes) tuples."""
        out = []
        for req in self.requests():
            for rs in req.get("resourceSpans", []):
                svc = service_of(rs)
                for ss in rs.get("scopeSpans", []):
                    for sp in ss.get("spans", []):
                        out.append((sp["traceId"], sp["spanId"], sp["name"], svc,
                                    json.dumps(sp.get("attributes", []), sort_keys=True)))
        return out

    def points(self):
        """(service, metric name, point attributes, value) of every gauge point."""
        out = []
        for req in self.requests():
            for rm in req.get("resourceMetrics", []):
                for sm in rm.get("scopeMetrics", []):
                    for m in sm.get("metrics", []):
                        for dp in m.get("gauge", {}).get("dataPoints", []):
                            out.append((service_of(rm), m["name"],
                                        json.dumps(dp.get("attributes", []), sort_keys=True),
                                        dp.get("asDouble")))
        return out

    def logs(self):
        """(trace id, span id, body) of every log record."""
        out = []
        for req in self.requests():
            for rl in req.get("resourceLogs", []):
                for sl in rl.get("scopeLogs", []):
                    for lr in sl.get("logRecords", []):
                        out.append((lr.get("traceId", ""), lr.get("spanId", ""),
                                    lr.get("body", {}).get("stringValue")))
        return out

    def cleanup(self):
        for r in self.routers:
            r.cleanup()
        for p in self.paths:
            try:
                os.remove(p)
                os.rmdir(os.path.dirname(p))
            except OSError:
                pass


def service_of(resource_block):
    for a in resource_block.get("resource", {}).get("attributes", []):
        if a["key"] == "service.name":
            return a["value"]["stringValue"]
    return None


def front_config(resolver, http_port, metrics_port=None, routing=(),
                 pipelines=("traces", "metrics", "logs")):
    return "\n".join([
        "receivers:",
        "  otlp:",
        "    protocols:",
        "      http:",
        "        endpoint: 127.0.0.1:%d" % http_port,
        "exporters:",
        "  loadbalancing:",
        *["    " + r for r in routing],
        "    protocol:",
        "      otlp:",
        "        timeout: 2s",
        "        tls: {insecure: true}",
        "        retry_on_failure: {initial_interval: 200ms, max_interval: 500ms, "
        "max_elapsed_time: 120s}",
        "    resolver:",
        resolver,
        "service:",
        ("  telemetry: {metrics: {address: 127.0.0.1:%d}}" % metrics_port) if metrics_port
        else "  telemetry: {metrics: {level: none}}",
        "  pipelines:",
        *["    %s: {receivers: [otlp], exporters: [loadbalancing]}" % p for p in pipelines],
        ""])


def metric_values(port, name):
    """The values of every series of one metric on the router's /metrics."""
    status, _, body = http("GET", "http://127.0.0.1:%d/metrics" % port)
    if status != 200:
        raise AssertionError("/metrics answered %d" % status)
    out = []
    for line in body.decode().split("\n"):
        if line.startswith(name + " ") or line.startswith(name + "{"):
            out.append(float(line.rsplit(" ", 1)[1]))
    return out


def static_resolver(ports):
    return "\n".join(["      static:", "        hostnames:"] +
                     ["          - 127.0.0.1:%d" % p for p in ports])


def start_front(args, resolver, metrics_port=None):
    port = free_port()
    return Router(args.bin, [args.plugin_dir], front_config(resolver, port, metrics_port)), port


# ---- the data ------------------------------------------------------------------------

def trace_ids(n, salt):
    out = []
    for i in range(n):
        h = "%08x" % crc32_ieee(b"%s-%d" % (salt.encode(), i))
        out.append((h * 4)[:24] + "%08x" % (i + 1))
    return out


def send_traces(front_port, tids, spans_per_trace, run):
    """Request r holds span r of every trace, half under service a, half under b (two
    resources a request). Returns the expected spans."""
    expected = {}
    for r in range(spans_per_trace):
        by_svc = {"svc-a": [], "svc-b": []}
        for t, tid in enumerate(tids):
            sid = "%02x%06x%08x" % (run, t, r + 1)
            name = "op-%d-%d" % (t, r)
            attrs = [{"key": "n", "value": {"intValue": str(t * 100 + r)}},
                     {"key": "run", "value": {"stringValue": "r%d" % run}}]
            svc = "svc-a" if t % 2 == 0 else "svc-b"
            by_svc[svc].append(json_span(name, trace_id=tid, span_id=sid, attributes=attrs))
            expected[(tid, sid)] = (name, svc, json.dumps(attrs, sort_keys=True))
        body = {"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s}}]},
            "scopeSpans": [{"scope": {"name": "lbtest"}, "spans": sp}]}
            for s, sp in by_svc.items()]}
        status, _, resp = post_json("http://127.0.0.1:%d/v1/traces" % front_port, body)
        if status != 200:
            raise AssertionError("front answered %d: %r" % (status, resp))
    return expected


def collect(backends, expected, timeout=WAIT, subset=None):
    """Waits until every expected span (or those of `subset` backends) arrived."""
    want = len(expected) if subset is None else subset

    def enough():
        got = sum(len([s for s in b.spans() if (s[0], s[1]) in expected]) for b in backends)
        return got >= want
    wait_for("%d spans at the backends" % want, enough, timeout)
    time.sleep(0.3)  # anything extra (a duplicate) would show up now
    return {b.tag: [s for s in b.spans() if (s[0], s[1]) in expected] for b in backends}


def placement(got):
    """trace id -> set of backend tags holding its spans."""
    where = {}
    for tag, spans in got.items():
        for s in spans:
            where.setdefault(s[0], set()).add(tag)
    return where


def check_spans(check, got, expected, what):
    seen = {}
    for spans in got.values():
        for tid, sid, name, svc, attrs in spans:
            seen[(tid, sid)] = seen.get((tid, sid), 0) + 1
            if (name, svc, attrs) != expected[(tid, sid)]:
                check(False, "%s: span %s/%s arrived changed" % (what, tid, sid))
                return
    check(len(seen) == len(expected), "%s: all %d spans arrived (%d)" %
          (what, len(expected), len(seen)))
    check(all(v == 1 for v in seen.values()), "%s: no span arrived twice" % what)
    check(True, "%s: every span's name, service and attributes unchanged" % what)


def check_routing(check, got, tids, ring, ep_of_tag, what):
    where = placement(got)
    one = all(len(where.get(t, ())) == 1 for t in tids)
    check(one, "%s: every span of each of %d traces on exactly one backend" % (what, len(tids)))
    bad = [t for t in tids if where.get(t) != {ep_of_tag[ring.endpoint_for(bytes.fromhex(t))]}]
    check(not bad, "%s: each trace on the backend the reference ring computes (%d wrong%s)" %
          (what, len(bad), (": " + ", ".join(bad[:3])) if bad else ""))
    return {t: next(iter(where[t])) for t in tids if len(where.get(t, ())) == 1}


# ---- cases ------------------------------------------------------------------------------

def with_backends(args, fn):
    ports = [free_port() for _ in range(3)]
    backends = [Backend(args, p, "b%d" % i) for i, p in enumerate(ports)]
    try:
        return fn(ports, backends)
    finally:
        for b in backends:
            b.cleanup()


def case_route(args):
    check = Checks()

    def run(ports, backends):
        tids = trace_ids(90, "route")
        ring = Ring(["127.0.0.1:%d" % p for p in ports])
        tag_of = {"127.0.0.1:%d" % b.port: b.tag for b in backends}
        mport = free_port()
        front, fport = start_front(args, static_resolver(ports), mport)
        with front:
            expected = send_traces(fport, tids, 4, 1)
            got = collect(backends, expected)
            check_spans(check, got, expected, "route")
            check_routing(check, got, tids, ring, tag_of, "route")
            counts = {t: len({s[0] for s in v}) for t, v in got.items()}
            check(all(c > 0 for c in counts.values()),
                  "route: every backend got traces (%s)" % counts)
            check(metric_values(mport, "switchyard_loadbalancer_num_backends") == [3.0],
                  "route: switchyard_loadbalancer_num_backends is 3")
            for b in backends:
                name = "switchyard_loadbalancer_backend_items_127_0_0_1_%d_total" % b.port
                v = metric_values(mport, name)
                check(v == [float(len(got[b.tag]))], "route: %s = %s, the spans %s got (%d)" %
                      (name, v, b.tag, len(got[b.tag])))
            sent = metric_values(mport, "switchyard_exporter_sent_spans_total")
            check(sum(sent) == len(expected), "route: exporter_sent_spans = %s" % sent)
            check(front.stop() == 0, "route: the front exits 0")
    with_backends(args, run)
    return check.failures


def case_resize(args):
    check = Checks()

    def run(ports, backends):
        tids = trace_ids(150, "resize")
        eps = ["127.0.0.1:%d" % p for p in ports]
        tag_of = {"127.0.0.1:%d" % b.port: b.tag for b in backends}
        ring3 = Ring(eps)
        removed = sorted(eps)[-1]  # the last in sort order: no position freed for others
        ring2 = Ring([e for e in eps if e != removed])
        seen = set()

        def phase(ring, eps_now, run_no, what):
            front, fport = start_front(args, static_resolver([int(e.split(":")[1])
                                                                for e in eps_now]))
            with front:
                expected = send_traces(fport, tids, 2, run_no)
                got = collect(backends, expected)
                check_spans(check, got, expected, what)
                where = check_routing(check, got, tids, ring, tag_of, what)
                check(front.stop() == 0, "%s: the front exits 0" % what)
            seen.update(expected)
            return where

        before = phase(ring3, eps, 1, "3 backends")
        after = phase(ring2, [e for e in eps if e != removed], 2, "2 backends")
        moved = [t for t in tids if before.get(t) != after.get(t)]
        predicted = [t for t in tids if ring3.endpoint_for(bytes.fromhex(t)) !=
                     ring2.endpoint_for(bytes.fromhex(t))]
        check(sorted(moved) == sorted(predicted),
              "resize: the traces that moved are exactly the %d the reference predicts (%d)" %
              (len(predicted), len(moved)))
        check(all(before[t] == tag_of[removed] for t in moved),
              "resize: only traces of the removed backend moved")
        share = len(moved) / len(tids)
        check(0.15 <= share <= 0.5, "resize: %.0f%% of the traces moved (about 1/3)" %
              (100 * share))
        again = phase(ring3, eps, 3, "3 backends again")
        check(again == before, "resize: with the backend back, every trace is where it was")
    with_backends(args, run)
    return check.failures


def case_down(args):
    check = Checks()

    def run(ports, backends):
        tids = trace_ids(90, "down")
        eps = ["127.0.0.1:%d" % p for p in ports]
        tag_of = {"127.0.0.1:%d" % b.port: b.tag for b in backends}
        ring = Ring(eps)
        down = backends[1]
        down.stop()
        front, fport = start_front(args, static_resolver(ports))
        with front:
            expected = send_traces(fport, tids, 3, 1)
            down_ep = "127.0.0.1:%d" % down.port
            on_down = {k for k in expected if ring.endpoint_for(bytes.fromhex(k[0])) == down_ep}
            check(len(on_down) > 0, "down: the reference sends %d spans to the stopped backend"
                  % len(on_down))
            others = {k: v for k, v in expected.items() if k not in on_down}
            up = [b for b in backends if b is not down]
            got = collect(up, others)
            check_spans(check, got, others, "down: the running backends")
            check_routing(check, got, sorted({k[0] for k in others}), ring, tag_of,
                          "down: the running backends")
            time.sleep(1.5)  # several retries go by
            stray = [s for b in up for s in b.spans() if (s[0], s[1]) in on_down]
            check(not stray, "down: none of the stopped backend's spans went elsewhere (%d)" %
                  len(stray))
            retries = [ln for ln in front.lines() if "Will retry" in ln and
                       "port %d" % down.port in ln]
            check(len(retries) >= 2, "down: the front logs retries to the stopped backend "
                  "(%d lines, e.g. %r)" % (len(retries), retries[:1]))
            down.restart()
            got = collect(backends, expected, timeout=30.0)
            check_spans(check, got, expected, "down: after the restart")
            check_routing(check, got, tids, ring, tag_of, "down: after the restart")
            check(front.stop() == 0, "down: the front exits 0")
    with_backends(args, run)
    return check.failures


def case_down_mid(args):
    """A backend goes down in the middle of its traces: the spans sent before reached
    it; the later spans of the same traces wait in its queue and are retried (the
    collector's loadbalancing exporter does the same: each backend is its own otlp
    exporter with its own queue and retry, and only a resolver change moves a key),
    so once it is back every span of each trace is on that one backend."""
    check = Checks()

    def run(ports, backends):
        tids = trace_ids(60, "mid")
        eps = ["127.0.0.1:%d" % p for p in ports]
        tag_of = {"127.0.0.1:%d" % b.port: b.tag for b in backends}
        ring = Ring(eps)
        down = backends[2]
        down_ep = "127.0.0.1:%d" % down.port
        front, fport = start_front(args, static_resolver(ports))
        with front:
            first = send_traces(fport, tids, 2, 1)
            got = collect(backends, first)
            check_spans(check, got, first, "down_mid: before the stop")
            down.stop()
            second = send_traces(fport, tids, 2, 2)
            on_down = {k for k in second if ring.endpoint_for(bytes.fromhex(k[0])) == down_ep}
            check(len(on_down) > 0, "down_mid: %d later spans belong to the stopped backend" %
                  len(on_down))
            up = [b for b in backends if b is not down]
            others = {k: v for k, v in second.items() if k not in on_down}
            got = collect(up, others)
            check_spans(check, got, others, "down_mid: the running backends, second half")
            time.sleep(1.5)  # several retries go by
            stray = [sp for b in up for sp in b.spans() if (sp[0], sp[1]) in on_down]
            check(not stray, "down_mid: none of the stopped backend's later spans went "
                  "elsewhere (%d)" % len(stray))
            down.restart()
            both = dict(first)
            both.update(second)
            got = collect(backends, both, timeout=30.0)
            check_spans(check, got, both, "down_mid: after the restart")
            check_routing(check, got, tids, ring, tag_of,
                          "down_mid: every span of a trace on its one backend")
            check(front.stop() == 0, "down_mid: the front exits 0")
    with_backends(args, run)
    return check.failures


def case_dns(args):
    check = Checks()

    def run(ports, backends):
        port = ports[0]
        addrs = sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", None,
                                                               type=socket.SOCK_STREAM)})
        eps = ["[%s]:%d" % (a, port) if ":" in a else "%s:%d" % (a, port) for a in addrs]
        check("127.0.0.1:%d" % port in eps, "dns: localhost resolves to 127.0.0.1 (%s)" % addrs)
        ring = Ring(eps)
        resolver = "\n".join(["      dns:", "        hostname: localhost",
                              "        port: %d" % port, "        interval: 1s"])
        tids = trace_ids(60, "dns")
        front, fport = start_front(args, resolver)
        with front:
            expected = send_traces(fport, tids, 2, 1)
            mine = {k: v for k, v in expected.items()
                    if ring.endpoint_for(bytes.fromhex(k[0])) == "127.0.0.1:%d" % port}
            got = collect(backends, mine)
            check_spans(check, {k: v for k, v in got.items()}, mine,
                        "dns: the backend at 127.0.0.1:%d" % port)
            check(all(len(v) == 0 for t, v in got.items() if t != backends[0].tag),
                  "dns: nothing went to the other backends")
            check(all(s[0] in {k[0] for k in mine} for s in got[backends[0].tag]),
                  "dns: the backend holds exactly the traces the reference ring of %s gives it"
                  % eps)
            out = front.output()
            check("1 backend(s) on the ring" in out or "%d backend(s) on the ring" % len(eps)
                  in out, "dns: the front logs the ring it built (%d backends)" % len(eps))
            check(front.stop() == 0, "dns: the front exits 0")
    with_backends(args, run)
    return check.failures


def case_signals(args):
    """Metrics routed by service (the collector's default for metrics), logs by trace
    id, through the same exporter instance."""
    check = Checks()

    def run(ports, backends):
        ring = Ring(["127.0.0.1:%d" % p for p in ports])
        tag_of = {"127.0.0.1:%d" % b.port: b.tag for b in backends}
        front, fport = start_front(args, static_resolver(ports))
        services = ["svc-%d" % i for i in range(12)]
        tids = trace_ids(40, "logs")
        with front:
            want_points = {}
            for rnd in range(2):
                body = {"resourceMetrics": [{
                    "resource": {"attributes": [{"key": "service.name",
                                                 "value": {"stringValue": svc}}]},
                    "scopeMetrics": [{"scope": {"name": "lbtest"}, "metrics": [
                        {"name": "m%d" % m, "gauge": {"dataPoints": [
                            {"asDouble": rnd * 1000 + i * 10 + m, "timeUnixNano": "1000",
                             "attributes": [{"key": "r", "value": {"intValue": str(rnd)}}]}]}}
                        for m in range(3)]}]} for i, svc in enumerate(services)]}
                for i, svc in enumerate(services):
                    for m in range(3):
                        want_points[(svc, "m%d" % m, rnd)] = float(rnd * 1000 + i * 10 + m)
                status, _, resp = post_json("http://127.0.0.1:%d/v1/metrics" % fport, body)
                check(status == 200, "signals: metrics request %d accepted (%d)" % (rnd, status))
            want_logs = {}
            for rnd in range(2):
                recs = []
                for t, tid in enumerate(tids):
                    sid = "%08x%08x" % (rnd, t + 1)
                    recs.append({"timeUnixNano": "1000", "traceId": tid, "spanId": sid,
                                 "body": {"stringValue": "log %d %d" % (rnd, t)}})
                    want_logs[(tid, sid)] = "log %d %d" % (rnd, t)
                body = {"resourceLogs": [{"resource": {}, "scopeLogs": [
                    {"scope": {}, "logRecords": recs}]}]}
                status, _, resp = post_json("http://127.0.0.1:%d/v1/logs" % fport, body)
                check(status == 200, "signals: logs request %d accepted (%d)" % (rnd, status))

            def all_in():
                return (sum(len(b.points()) for b in backends) >= len(want_points) and
                        sum(len(b.logs()) for b in backends) >= len(want_logs))
            wait_for("every point and log record", all_in, WAIT)
            time.sleep(0.3)
            bad = 0
            n = 0
            for b in backends:
                for svc, name, attrs, val in b.points():
                    rnd = json.loads(attrs)[0]["value"]["intValue"]
                    n += 1
                    if want_points.get((svc, name, int(rnd))) != val:
                        bad += 1
                    elif tag_of[ring.endpoint_for(svc.encode())] != b.tag:
                        bad += 1
            check(n == len(want_points) and bad == 0,
                  "signals: %d data points, each once, unchanged, on the backend the reference "
                  "ring gives its service.name (%d wrong)" % (n, bad))
            bad = 0
            n = 0
            for b in backends:
                for tid, sid, body in b.logs():
                    n += 1
                    if want_logs.get((tid, sid)) != body or \
                            tag_of[ring.endpoint_for(bytes.fromhex(tid))] != b.tag:
                        bad += 1
            check(n == len(want_logs) and bad == 0,
                  "signals: %d log records, each once, unchanged, on the backend the reference "
                  "ring gives their trace id (%d wrong)" % (n, bad))
            used = {b.tag for b in backends if b.points()}
            check(len(used) >= 2, "signals: the services spread over %d backends" % len(used))
            check(front.stop() == 0, "signals: the front exits 0")
    with_backends(args, run)
    return check.failures


CONFIG_ERRORS = [
    ("resolver: {static: {hostnames: ['a:1']}, dns: {hostname: x}}",
     "only one resolver should be specified"),
    ("protocol: {otlp: {timeout: 1s}}", "no resolvers specified for the exporter"),
    ("resolver: {k8s: {service: x}}", "resolver.k8s is not supported"),
    ("routing_key: attributes\n    resolver: {static: {hostnames: ['a:1']}}",
     'routing_attributes must be specified when routing_key is "attributes"'),
    ("routing_key: service\n    routing_attributes: [x]\n"
     "    resolver: {static: {hostnames: ['a:1']}}",
     'routing_attributes can only be used when routing_key is "attributes"'),
    ("routing_key: bogus\n    resolver: {static: {hostnames: ['a:1']}}",
     'unsupported routing_key: "bogus"'),
    ("resolver: {static: {hostnames: []}}", "no endpoints specified for the static resolver"),
    ("resolver: {dns: {port: 4317}}", "no hostname specified to resolve the backends"),
    ("resolver: {dns: {hostname: x, port: '99999'}}", "resolver.dns.port must be a port number"),
    ("protocol: {otlp: {tls: {insecure: true}, bogus: 1}}\n"
     "    resolver: {static: {hostnames: ['a:1']}}", "has invalid keys: protocol.otlp.bogus"),
    ("protocol: {otlp: {compression: lz4}}\n    resolver: {static: {hostnames: ['a:1']}}",
     "compression"),
]


def case_config(args):
    """Configuration errors, as `switchyard validate` reports them (the collector's
    messages where it has one), and a key the pipeline's signal does not support."""
    check = Checks()
    d = tempfile.mkdtemp(prefix="sy-lb-cfg-")
    path = os.path.join(d, "c.yaml")
    try:
        def validate(body, pipeline="traces"):
            with open(path, "w") as f:
                f.write("receivers:\n  otlp:\n    protocols:\n      http:\n"
                        "        endpoint: 127.0.0.1:%d\n"
                        "exporters:\n  loadbalancing:\n    %s\nservice:\n"
                        "  telemetry: {metrics: {level: none}}\n  pipelines:\n"
                        "    %s: {receivers: [otlp], exporters: [loadbalancing]}\n"
                        % (free_port(), body, pipeline))
            p = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                                args.plugin_dir], capture_output=True, text=True, timeout=20)
            return p.returncode, p.stdout + p.stderr
        for body, want in CONFIG_ERRORS:
            rc, out = validate(body)
            check(rc != 0 and want in out and "c.yaml:" in out,
                  "config: %r refused with %r (%s)" % (body, want, out.strip()[-160:]))
        rc, out = validate("protocol: {otlp: {endpoint: ignored:1, tls: {insecure: true}}}\n"
                           "    resolver: {static: {hostnames: ['a:1', b]}}")
        check(rc == 0, "config: a valid configuration (protocol.otlp.endpoint ignored) "
              "passes (%s)" % out.strip()[-120:])
        with open(path, "w") as f:
            f.write("receivers:\n  otlp:\n    protocols:\n      http:\n"
                    "        endpoint: 127.0.0.1:%d\n"
                    "exporters:\n  loadbalancing:\n    routing_key: metric\n"
                    "    resolver: {static: {hostnames: ['127.0.0.1:%d']}}\n"
                    "service:\n  telemetry: {metrics: {level: none}}\n  pipelines:\n"
                    "    traces: {receivers: [otlp], exporters: [loadbalancing]}\n"
                    % (free_port(), free_port()))
        p = subprocess.run([args.bin, "--config", path, "--plugin-dir", args.plugin_dir],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode != 0 and
              'unsupported routing_key: "metric" for the traces pipeline' in p.stdout + p.stderr,
              "config: routing_key metric on a traces pipeline stops the start (rc %d)" %
              p.returncode)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return check.failures


def case_keys(args):
    """The other routing keys: traces by `attributes` (a resource attribute and the
    span.name pseudo attribute), traces by `service`, metrics by `metric` name; each
    item on the backend the reference ring gives its key (for service and metric the
    collector's exact key: the string itself)."""
    check = Checks()

    def run(ports, backends):
        ring = Ring(["127.0.0.1:%d" % p for p in ports])
        tag_of = {"127.0.0.1:%d" % b.port: b.tag for b in backends}
        tids = trace_ids(30, "keys")
        # 1. attributes: [tenant, span.name]
        fport = free_port()
        cfg = front_config(static_resolver(ports), fport,
                           routing=["routing_key: attributes",
                                    "routing_attributes: [tenant, span.name]"],
                           pipelines=("traces",))
        spans = {}
        with Router(args.bin, [args.plugin_dir], cfg) as front:
            body = {"resourceSpans": [{
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": "svc"}},
                    {"key": "tenant", "value": {"stringValue": "tenant-%d" % r}}]},
                "scopeSpans": [{"scope": {"name": "k"}, "spans": [
                    json_span("op-%d" % (t % 5), trace_id=tid, span_id="%08x%08x" % (r, t + 1))
                    for t, tid in enumerate(tids)]}]} for r in range(4)]}
            for r in range(4):
                for t, tid in enumerate(tids):
                    spans[(tid, "%08x%08x" % (r, t + 1))] = b"tenant-%d\x1fop-%d\x1f" % (r, t % 5)
            status, _, _ = post_json("http://127.0.0.1:%d/v1/traces" % fport, body)
            check(status == 200, "keys: attributes request accepted")
            got = collect(backends, {k: None for k in spans})
            wrong = [k for b in backends for k in ((s[0], s[1]) for s in got[b.tag])
                     if tag_of[ring.endpoint_for(spans[k])] != b.tag]
            n = sum(len(v) for v in got.values())
            check(n == len(spans) and not wrong,
                  "keys: %d spans by [tenant, span.name], each on the reference's backend "
                  "(%d wrong)" % (n, len(wrong)))
            check(len([b for b in backends if got[b.tag]]) >= 2,
                  "keys: the attribute keys spread over several backends")
            check(front.stop() == 0, "keys: attributes front exits 0")
        # 2. service, for traces
        fport = free_port()
        cfg = front_config(static_resolver(ports), fport, routing=["routing_key: service"],
                           pipelines=("traces",))
        with Router(args.bin, [args.plugin_dir], cfg) as front:
            expected = send_traces(fport, tids, 2, 7)
            got = collect(backends, expected)
            wrong = [s for b in backends for s in got[b.tag]
                     if tag_of[ring.endpoint_for(s[3].encode())] != b.tag]
            n = sum(len(v) for v in got.values())
            check(n == len(expected) and not wrong,
                  "keys: %d spans by service.name, each on the reference's backend (%d wrong)"
                  % (n, len(wrong)))
            check(front.stop() == 0, "keys: service front exits 0")
        # 3. metric name
        fport = free_port()
        cfg = front_config(static_resolver(ports), fport, routing=["routing_key: metric"],
                           pipelines=("metrics",))
        with Router(args.bin, [args.plugin_dir], cfg) as front:
            names = ["metric.%d" % i for i in range(20)]
            body = {"resourceMetrics": [{
                "resource": {"attributes": [{"key": "service.name",
                                             "value": {"stringValue": "keys-%d" % r}}]},
                "scopeMetrics": [{"scope": {"name": "k"}, "metrics": [
                    {"name": m, "gauge": {"dataPoints": [
                        {"asDouble": float(r * 100 + i), "timeUnixNano": "1"}]}}
                    for i, m in enumerate(names)]}]} for r in range(3)]}
            status, _, _ = post_json("http://127.0.0.1:%d/v1/metrics" % fport, body)
            check(status == 200, "keys: metrics request accepted")
            wait_for("60 points", lambda: sum(len([p for p in b.points()
                                                   if p[0].startswith("keys-")])
                                              for b in backends) >= 60, WAIT)
            time.sleep(0.3)
            pts = [(b.tag, p) for b in backends for p in b.points() if p[0].startswith("keys-")]
            wrong = [p for tag, p in pts if tag_of[ring.endpoint_for(p[1].encode())] != tag]
            vals = sorted(p[3] for _, p in pts)
            check(len(pts) == 60 and not wrong and
                  vals == sorted(float(r * 100 + i) for r in range(3) for i in range(20)),
                  "keys: 60 points by metric name, each once on the reference's backend "
                  "(%d wrong)" % len(wrong))
            check(front.stop() == 0, "keys: metric front exits 0")
    with_backends(args, run)
    return check.failures


SKIP = 77


def case_dns_change(args):
    """The dns resolver's answer changes: the front runs in a private mount namespace
    (unshare -m) whose /etc/hosts is a file of the test, first giving the name two
    addresses (127.0.0.1, where the backend listens, and ::1, where nothing does), then
    only 127.0.0.1. The ring follows: the ::1 backend's keys move to the remaining one,
    the others stay; what waited in the removed backend's queue is given up and
    counted, as in the collector (its exporter is shut down)."""
    check = Checks()
    d = tempfile.mkdtemp(prefix="sy-lb-ns-")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 lbtest-backends\n::1 lbtest-backends\n")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind %s /etc/hosts" % hosts],
                           capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        print("SKIP: no private mount namespace here (unshare -m: %s)" % probe.stderr.strip())
        shutil.rmtree(d, ignore_errors=True)
        return SKIP
    wrapper = os.path.join(d, "front.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nif [ -z "$SY_LB_NS" ]; then SY_LB_NS=1 exec unshare -m "$0" "$@"; fi\n'
                "mount --bind %s /etc/hosts || exit 97\nexec %s \"$@\"\n" % (hosts, args.bin))
    os.chmod(wrapper, 0o755)

    def run(ports, backends):
        port = ports[0]
        eps2 = ["127.0.0.1:%d" % port, "[::1]:%d" % port]
        ring2, ring1 = Ring(eps2), Ring(eps2[:1])
        mport = free_port()
        fport = free_port()
        resolver = "\n".join(["      dns:", "        hostname: lbtest-backends",
                               "        port: %d" % port, "        interval: 300ms"])
        cfg = front_config(resolver, fport, mport).replace("timeout: 2s", "timeout: 1s")
        front = Router(wrapper, [args.plugin_dir], cfg)
        with front:
            check(front.wait_output("the ring of two", lambda ls: any(
                "2 backend(s) on the ring" in ln for ln in ls), WAIT) is not None,
                "dns change: the ring holds both addresses of lbtest-backends")
            tids = trace_ids(80, "dnschange")
            expected = send_traces(fport, tids, 2, 1)
            local = {k: v for k, v in expected.items()
                     if ring2.endpoint_for(bytes.fromhex(k[0])) == eps2[0]}
            away = len(expected) - len(local)
            check(0 < len(local) < len(expected), "dns change: the reference splits the traces "
                  "(%d spans to 127.0.0.1, %d to ::1)" % (len(local), away))
            got = collect(backends, local)
            check_spans(check, got, local, "dns change: 127.0.0.1's share")
            check(all(len(v) == 0 for t, v in got.items() if t != backends[0].tag),
                  "dns change: nothing at the other backends")
            with open(hosts, "w") as f:  # the same inode: the bind mount sees it
                f.write("127.0.0.1 lbtest-backends\n")
            check(front.wait_output("the ring of one", lambda ls: any(
                "1 backend(s) on the ring" in ln for ln in ls), WAIT) is not None,
                "dns change: the ring follows the new answer (1 backend)")
            expected2 = send_traces(fport, tids, 2, 2)
            got2 = collect(backends, expected2)
            check_spans(check, got2, expected2, "dns change: after the change")
            before = {t for (t, _) in local}
            moved = {t for t in tids if t not in before}
            predicted = {t for t in tids if ring2.endpoint_for(bytes.fromhex(t)) !=
                         ring1.endpoint_for(bytes.fromhex(t))}
            check(moved == predicted and all(t in {s[0] for s in got2[backends[0].tag]}
                                              for t in tids),
                  "dns change: exactly the %d traces of ::1 moved, the others stayed" %
                  len(predicted))

            def failed_all():
                return sum(metric_values(mport, "switchyard_exporter_send_failed_spans_total")) \
                    >= away
            wait_for("the removed backend's spans counted as failed", failed_all, WAIT)
            failed = sum(metric_values(mport, "switchyard_exporter_send_failed_spans_total"))
            check(failed == away, "dns change: the %d spans queued for the removed backend are counted in "
                  "exporter_send_failed_spans (%d)" % (away, failed))
            check(metric_values(mport, "switchyard_loadbalancer_num_backends") == [1.0],
                  "dns change: loadbalancer_num_backends is 1")
            check(metric_values(mport, "switchyard_loadbalancer_num_backend_updates_total")
                  == [2.0], "dns change: loadbalancer_num_backend_updates is 2")
            check(sum(metric_values(mport, "switchyard_loadbalancer_num_resolutions_total")) >= 3,
                  "dns change: the resolver ran every interval")
            check(front.stop() == 0, "dns change: the front exits 0")
    try:
        with_backends(args, run)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return check.failures


CASES = {"keys": case_keys, "dns_change": case_dns_change, "config": case_config, "signals": case_signals, "route": case_route, "resize": case_resize, "down": case_down, "dns": case_dns,
         "down_mid": case_down_mid}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()
    check_reference()
    failures = CASES[args.case](args)
    if failures == SKIP:
        return SKIP
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
