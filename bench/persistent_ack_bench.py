#!/usr/bin/env python3
"""Latency of OTLP/HTTP answers with a persistent sending queue, build A against
build B (docs/reliability.md, "Measured": the cost of answering after the write).

For each build and each pipeline it starts a backend router (otlp receiver -> nop
exporter) and the router under test (otlp receiver -> [processors] -> otlphttp
exporter with `sending_queue.storage: file_storage` to that backend), runs
bench/loadgen at a fixed rate and reads the answers' p50/p99; the builds take
turns per --repeat (A B, B A, ...), on the same machine in the same run.

    bench/persistent_ack_bench.py --build-dir-a build-prev --build-dir-b build \
        --rate 200 --duration 8 --repeat 3

Pipelines: `direct` (no processor), `batch` (batch processor, timeout 50ms) and
`memory` (no persistent queue at all, for the no-cost check).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

PIPES = {
    "direct": ("", True),
    "batch": ("batch: {timeout: 50ms, send_batch_size: 8192}", True),
    "memory": ("", False),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def start(build, cfg_text, tmp, name):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(cfg_text)
    log = open(os.path.join(tmp, name + ".log"), "wb")
    return subprocess.Popen([os.path.join(build, "bin/switchyard"), "--config", path,
                             "--plugin-dir", os.path.join(build, "lib/switchyard/plugins")],
                            stdout=log, stderr=subprocess.STDOUT)


def stop(p):
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def run_one(build, pipe, args):
    procs, persistent = PIPES[pipe]
    with tempfile.TemporaryDirectory(prefix="sy-ackb-") as tmp:
        bport, port = free_port(), free_port()
        backend = start(build, f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{bport}
exporters:
  nop:
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{free_port()}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [nop]
""", tmp, "backend")
        os.mkdir(os.path.join(tmp, "q"))
        queue = f"""    sending_queue:
      storage: file_storage
      queue_size: 100000
""" if persistent else ""
        router = start(build, f"""
extensions:
  file_storage:
    directory: {tmp}/q
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  {procs or "batch/unused: {}"}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{bport}
    compression: none
{queue}service:
  extensions: [file_storage]
  telemetry:
    metrics:
      address: 127.0.0.1:{free_port()}
  pipelines:
    traces:
      receivers: [otlp]
{"      processors: [batch]" if procs else ""}
      exporters: [otlphttp]
""", tmp, "router")
        try:
            wait_port(bport)
            wait_port(port)
            time.sleep(0.3)
            out = subprocess.run(
                [os.path.join(build, "bin/loadgen"), "--url", f"http://127.0.0.1:{port}/v1/traces",
                 "--connections", str(args.connections), "--rate", str(args.rate),
                 "--duration", str(args.duration), "--spans-per-request", str(args.spans),
                 "--out", "json"], capture_output=True, text=True, timeout=args.duration + 60)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            return r
        finally:
            stop(router)
            stop(backend)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir-a", required=True)
    ap.add_argument("--build-dir-b", required=True)
    ap.add_argument("--pipes", default="direct,batch,memory")
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--spans", type=int, default=100)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    res = {}
    for pipe in args.pipes.split(","):
        for rep in range(args.repeat):
            order = ["A", "B"] if rep % 2 == 0 else ["B", "A"]
            for which in order:
                build = args.build_dir_a if which == "A" else args.build_dir_b
                r = run_one(build, pipe, args)
                res.setdefault((pipe, which), []).append(r)
                print(f"{pipe} {which} run {rep + 1}: accepted={r['accepted']} "
                      f"refused={r['refused']} failed={r['failed']} "
                      f"p50={r['p50_us'] / 1000:.2f} ms p99={r['p99_us'] / 1000:.2f} ms",
                      flush=True)
    print(f"\n{args.rate} requests/s of {args.spans} spans over {args.connections} "
          f"connections, {args.duration} s, medians of {args.repeat} runs\n")
    print("| pipeline | build | p50 ms | p99 ms | accepted | refused+failed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for pipe in args.pipes.split(","):
        for which in ("A", "B"):
            rs = res[(pipe, which)]
            p50 = statistics.median(r["p50_us"] for r in rs) / 1000
            p99 = statistics.median(r["p99_us"] for r in rs) / 1000
            acc = sum(r["accepted"] for r in rs)
            bad = sum(r["refused"] + r["failed"] for r in rs)
            print(f"| {pipe} | {which} | {p50:.2f} | {p99:.2f} | {acc} | {bad} |")


if __name__ == "__main__":
    main()
