#!/usr/bin/env python3
"""The health_check extension and the /metrics endpoint, through the real binary.

Starts `switchyard` with an OTLP/HTTP receiver, the nop exporter, health_check and
service.telemetry.metrics on free loopback ports; waits for health to answer 200;
scrapes /metrics for the process metrics; sends one OTLP/JSON span and waits for
the receiver's and the exporter's counters to show it; then sends SIGTERM and
expects a clean exit (0).

    test_health_metrics.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
"""
import argparse
import json
import re
import socket
import sys
import time

from harness import Router, free_port, http, json_span, json_traces, post_json, wait_for

POLL_TIMEOUT = 10.0
EXIT_TIMEOUT = 15.0

SAMPLE_RE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*'
    r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})?'
    r' (-?[0-9.e+-]+|NaN|[+-]Inf)$')


def parse_metrics(text):
    """Checks the exposition format line by line; returns {name: [(labels, value)]}."""
    samples = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge"), line
            assert name not in types, "family %s declared twice" % name
            types[name] = kind
            continue
        assert SAMPLE_RE.match(line), "malformed sample line: %r" % line
        name, _, value = line.rpartition(" ")
        labels = ""
        if "{" in name:
            name, _, labels = name.partition("{")
            labels = labels[:-1]
        assert name in types, "sample %s before its # TYPE" % name
        samples.setdefault(name, []).append((labels, float(value)))
    return samples


def find_sample(samples, name, label):
    for labels, value in samples.get(name, []):
        if label in labels.split(","):
            return value
    return None


def raw_head(port, path, timeout=5.0):
    """Sends HEAD on its own connection and reads until the server closes it, so
    that any body bytes after the headers are seen. Returns (status, headers as a
    lower-case dict, the bytes after the blank line)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                  .encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, "no end of headers in %r" % data
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def check_head_matches_get(what, port, path, attempts=20):
    """HEAD must carry the Content-Length GET's body has, and no body. Bodies that
    hold live numbers (uptime, counters) may change length between two requests, so
    a mismatch is retried; a HEAD that carries body bytes fails at once."""
    url = f"http://127.0.0.1:{port}{path}"
    last = None
    for _ in range(attempts):
        status, headers, rest = raw_head(port, path)
        assert rest == b"", "%s: HEAD answered with %d body bytes" % (what, len(rest))
        assert status == 200, (what, status)
        head_len = int(headers.get("content-length", "-1"))
        get_status, _, body = http("GET", url)
        assert get_status == 200, (what, get_status)
        assert len(body) > 0, what
        if head_len == len(body):
            print("%s: HEAD Content-Length %d equals the GET body length" % (what, head_len))
            return
        last = (head_len, len(body))
        time.sleep(0.05)
    raise AssertionError("%s: HEAD Content-Length vs GET body length: %r" % (what, last))


SPAN = json_traces([json_span("one span")], service="health-metrics-test")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()

    otlp_port, health_port, metrics_port = free_port(), free_port(), free_port()
    config = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
exporters:
  nop:
extensions:
  health_check:
    endpoint: 127.0.0.1:{health_port}
    path: /health/status
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [nop]
"""
    router = None
    ok = False
    try:
        # Raises when there is no ready line within harness.STARTUP_TIMEOUT.
        router = Router(args.bin, [args.plugin_dir], config)

        health = f"http://127.0.0.1:{health_port}/health/status"
        status, headers, body = wait_for(
            "health 200", lambda: (lambda r: r if r[0] == 200 else None)(http("GET", health)),
            POLL_TIMEOUT)
        assert headers.get("Content-Type", "").startswith("application/json"), headers
        doc = json.loads(body)
        assert doc["status"] == "Server available", doc
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", doc["upSince"]), doc
        assert re.match(r"^[0-9hmsµn.]+s$", doc["uptime"]), doc
        status, _, body = http("HEAD", health)
        assert status == 200 and body == b"", (status, body)
        check_head_matches_get("health", health_port, "/health/status")
        status, _, _ = http("GET", f"http://127.0.0.1:{health_port}/elsewhere")
        assert status == 404, status
        print("health: ok", doc)

        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        status, headers, body = http("GET", metrics)
        assert status == 200, status
        assert headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8", headers
        samples = parse_metrics(body.decode())
        for name in ("switchyard_process_uptime_seconds",
                     "switchyard_process_resident_memory_bytes",
                     "switchyard_process_cpu_seconds_total",
                     "switchyard_process_start_time_seconds"):
            assert name in samples, "missing %s in:\n%s" % (name, body.decode())
        rss = samples["switchyard_process_resident_memory_bytes"][0][1]
        assert rss > 100 * 1024, rss
        start = samples["switchyard_process_start_time_seconds"][0][1]
        assert abs(start - time.time()) < 300, start
        print("metrics: process metrics ok, rss %.1f MiB" % (rss / 1048576))
        check_head_matches_get("metrics", metrics_port, "/metrics")

        status, _, body = post_json(f"http://127.0.0.1:{otlp_port}/v1/traces", SPAN)
        assert status == 200, (status, body)

        def counted():
            text = http("GET", metrics)[2].decode()
            s = parse_metrics(text)
            accepted = find_sample(s, "switchyard_receiver_accepted_spans_total",
                                   'receiver="otlp"')
            sent = find_sample(s, "switchyard_exporter_sent_spans_total", 'exporter="nop"')
            return (accepted, sent) if accepted == 1 and sent == 1 else None

        accepted, sent = wait_for("the span to be counted", counted, POLL_TIMEOUT)
        print("metrics: receiver accepted %d, exporter sent %d" % (accepted, sent))

        code = router.stop(EXIT_TIMEOUT)
        assert code == 0, "exit code %d after SIGTERM" % code
        ok = True
        print("PASS")
    except Exception:
        import traceback
        traceback.print_exc()
    finally:
        if router is not None:
            router.kill()
            if not ok:
                print("---- switchyard output ----", file=sys.stderr)
                router.dump(200)
            router.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
