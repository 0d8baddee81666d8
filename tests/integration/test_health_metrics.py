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
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

STARTUP_TIMEOUT = 20.0
POLL_TIMEOUT = 10.0
EXIT_TIMEOUT = 15.0

SAMPLE_RE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*'
    r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})?'
    r' (-?[0-9.e+-]+|NaN|[+-]Inf)$')


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=5.0):
    """Returns (status, headers, body bytes); HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def wait_for(what, fn, timeout):
    """Calls fn() until it returns a true value or the timeout passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except OSError as e:  # connection refused while starting
            last = e
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


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


SPAN = {
    "resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "health-metrics-test"}}]},
        "scopeSpans": [{
            "scope": {"name": "test"},
            "spans": [{
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "name": "one span",
                "kind": 2,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
            }],
        }],
    }],
}


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
    tmp = tempfile.TemporaryDirectory(prefix="sy-health-")
    cfg_path = os.path.join(tmp.name, "config.yaml")
    with open(cfg_path, "w") as f:
        f.write(config)

    proc = subprocess.Popen(
        [args.bin, "--config", cfg_path, "--plugin-dir", args.plugin_dir],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    ready = threading.Event()

    def read_stderr():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if re.search(r"\bready\b", line, re.IGNORECASE):
                ready.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    threading.Thread(target=proc.stdout.read, daemon=True).start()

    ok = False
    try:
        if not ready.wait(STARTUP_TIMEOUT):
            raise AssertionError("no 'ready' line within %.0fs (exit code %r)"
                                 % (STARTUP_TIMEOUT, proc.poll()))

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

        status, _, body = http(
            "POST", f"http://127.0.0.1:{otlp_port}/v1/traces",
            body=json.dumps(SPAN).encode(), headers={"Content-Type": "application/json"})
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

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(EXIT_TIMEOUT)
        assert code == 0, "exit code %d after SIGTERM" % code
        ok = True
        print("PASS")
    except Exception:
        import traceback
        traceback.print_exc()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=2)
        if not ok:
            print("---- switchyard stderr ----", file=sys.stderr)
            print("\n".join(lines[-200:]), file=sys.stderr)
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
