#!/usr/bin/env python3
"""The loki exporter's cost, measured as log records per CPU-second of the router.

  python3 bench/loki_bench.py --build-dir build --duration 10 [--connections 2]

For each exporter variant (loki protobuf+snappy, loki json, loki json+gzip, and
otlphttp protobuf as the baseline), starts the router as `otlp (HTTP) -> loki/...`
into a sink that answers 204 without decoding, POSTs one OTLP/JSON logs request
(512 records, 10 attributes each, 2 label hints) over and over from
`--connections` threads for `--duration` seconds, and prints the records the
exporter sent (its own metric), the router's CPU time (utime + stime from /proc)
and records per CPU-second. Python standard library only; 127.0.0.1 only.
"""
import argparse
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

RECORDS = 512


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_body():
    recs = []
    for i in range(RECORDS):
        attrs = [{"key": "attr.%d" % k, "value": {"stringValue": "value-%d-%d" % (k, i % 7)}} for k in range(8)]
        attrs += [{"key": "http.method", "value": {"stringValue": ["GET", "POST"][i % 2]}},
                  {"key": "loki.attribute.labels", "value": {"stringValue": "http.method"}}]
        recs.append({"timeUnixNano": str(1700000000000000000 + i * 1000), "severityNumber": 9 + (i % 3) * 4,
                     "severityText": "Info", "body": {"stringValue": "request %d served in %d ms" % (i, i % 97)},
                     "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                     "attributes": attrs})
    res = [{"key": "service.name", "value": {"stringValue": "bench"}},
           {"key": "service.instance.id", "value": {"stringValue": "i-1"}},
           {"key": "host.name", "value": {"stringValue": "h1"}},
           {"key": "loki.resource.labels", "value": {"stringValue": "host.name"}}]
    return json.dumps({"resourceLogs": [{"resource": {"attributes": res},
                                         "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": recs}]}]}).encode()


class Sink(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the router closing its connections at the end


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        self.server.bytes += n
        self.send_response(204 if self.path.startswith("/loki") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(name))


def run(args, name, exporter_yaml, body):
    sink = Sink(("127.0.0.1", 0), H)
    sink.bytes = 0
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    oport, mport = free_port(), free_port()
    cfg = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{oport}
exporters:
{exporter_yaml.replace('SINK', 'http://127.0.0.1:%d' % sink.server_address[1])}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [{exporter_yaml.split(':')[0].strip()}]
"""
    d = tempfile.mkdtemp(prefix="sy-lokibench-")
    path = os.path.join(d, "c.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    binary = os.path.join(args.build_dir, "bin", "switchyard")
    plugins = os.path.join(args.build_dir, "lib", "switchyard", "plugins")
    proc = subprocess.Popen([binary, "--config", path, "--plugin-dir", plugins],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", oport), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        stop = time.monotonic() + args.duration
        cpu0 = cpu_seconds(proc.pid)

        def client():
            c = http.client.HTTPConnection("127.0.0.1", oport, timeout=30)
            while time.monotonic() < stop:
                c.request("POST", "/v1/logs", body, {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()

        th = [threading.Thread(target=client) for _ in range(args.connections)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        time.sleep(1.0)  # let the exporter drain
        cpu = cpu_seconds(proc.pid) - cpu0
        sent = metric(mport, "switchyard_exporter_sent_log_records_total")
        print("%-28s %10d records  %6.2f CPU-s  %8.0f records/CPU-s  %6.1f MB to the sink" %
              (name, sent, cpu, sent / cpu if cpu else 0, sink.bytes / 1e6), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sink.shutdown()
        sink.server_close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--connections", type=int, default=2)
    args = ap.parse_args()
    body = request_body()
    print("one request: %d records, %d bytes of OTLP/JSON" % (RECORDS, len(body)))
    variants = [
        ("otlphttp (baseline)", "  otlphttp:\n    endpoint: SINK\n    compression: none\n"),
        ("loki protobuf+snappy", "  loki:\n    endpoint: SINK/loki/api/v1/push\n"),
        ("loki json", "  loki:\n    endpoint: SINK/loki/api/v1/push\n    encoding: json\n"),
        ("loki json+gzip", "  loki:\n    endpoint: SINK/loki/api/v1/push\n    encoding: json\n"
                           "    compression: gzip\n"),
    ]
    for name, y in variants:
        run(args, name, y, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
