#!/usr/bin/env python3
"""One shutdown deadline: a plugin stuck forever never makes the router hang.

For each callback a plugin can get stuck in (the test-only `testblock` plugin,
built as a receiver, a processor and an exporter, waits forever in the callback
named by `block_in`), the real binary is started, SIGTERM is sent once the plugin
is stuck, and the process must exit with code 4 (EXIT_STOP: something missed its
deadline) within the shutdown deadline plus one second of the signal; a plugin
stuck in create() or start() makes startup fail at the same deadline (exit 3,
EXIT_START). Every wait is bounded; a router that does not exit in time is killed
and the case fails. The router runs with --shutdown-timeout set to --deadline.

    test_shutdown.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins \
        --kit-dir build/tests/plugins [--deadline 10] [--only NAME]
"""
import argparse
import signal
import subprocess
import sys
import threading
import time

from harness import Router, free_port

READY_TIMEOUT = 15.0

# name: (pipeline components, the line that says the plugin is stuck, or None
# when the router gets ready and the plugin only gets stuck after SIGTERM)
GEN = "testgen: {count: 1000000, spans: 5, interval: 1ms}"
SINK = "testsink:"


def config(receivers, processors, exporters, pipeline):
    return f"""
receivers:
{receivers}
processors:
{processors or "  nop:"}
exporters:
{exporters}
service:
  telemetry:
    logs:
      level: info
    metrics:
      address: 127.0.0.1:{free_port()}
  pipelines:
    traces:
{pipeline}
"""


def case_config(kind, where):
    if where == "slow":
        # Not stuck, only slow: the sink holds a batch for an hour and declines the
        # rest, so its queue and then the pipeline fill. At the deadline the
        # exporter's backlog is counted as send_failed and what the pipeline held
        # as enqueue_failed; both count as lost, so the exit code is 4.
        return config("  " + GEN, None, "  testsink: {delay: 1h}",
                      "      receivers: [testgen]\n      exporters: [testsink]")
    rx, px, ex = "testgen", None, "testsink"
    receivers, processors, exporters = "  " + GEN, None, "  " + SINK
    block = f"testblock: {{block_in: {where}}}"
    if kind == "receiver":
        rx, receivers = "testblock", "  " + block
    elif kind == "processor":
        px, processors = "testblock", "  " + block
    else:
        ex, exporters = "testblock", "  " + block
    pipeline = (f"      receivers: [{rx}]\n"
                + (f"      processors: [{px}]\n" if px else "")
                + f"      exporters: [{ex}]")
    return config(receivers, processors, exporters, pipeline)


# (kind, callback, stuck before SIGTERM: wait for its log line rather than ready)
CASES = [
    ("processor", "consume", True),
    ("processor", "shutdown", False),
    ("exporter", "consume", True),
    ("exporter", "shutdown", False),
    ("receiver", "start", True),
    ("receiver", "shutdown", False),
    # Beyond the three callbacks named by the requirement: stuck before start,
    # and stuck while being freed after a clean drain.
    ("receiver", "create", True),
    ("exporter", "destroy", False),
    # A slow exporter, not a stuck one: the deadline abandons what it holds.
    ("exporter", "slow", False),
    # The control: nothing stuck, so the router drains and exits 0 at once.
    ("processor", "none", False),
]

# Lines that must be in the log of a case, beyond its exit code.
EXPECT_LOG = {
    "exporter.slow": ["items were never sent and are counted as failed",
                      "acknowledged items could not be delivered by the shutdown deadline"],
}


def run_case(args, kind, where, stuck_first, results):
    name = f"{kind}.{where}"
    text = case_config(kind, where)
    limit = args.deadline + 1.0
    with Router(args.bin, [args.plugin_dir, args.kit_dir], text, wait=False,
                extra_args=["--shutdown-timeout", f"{args.deadline:g}s"]) as r:
        try:
            if stuck_first:
                needle = f"testblock: blocking forever in {where}()"
                ok = r.wait_output(needle, lambda lines: any(needle in l for l in lines),
                                   READY_TIMEOUT)
            else:
                ok = r.wait_ready(READY_TIMEOUT)
                time.sleep(0.3)  # let data flow through the pipeline first
            if not ok:
                results[name] = (False, "the plugin never got stuck / the router never got "
                                 f"ready (exit {r.proc.poll()}):\n{r.output()}")
                return
            t0 = time.monotonic()
            r.proc.send_signal(signal.SIGTERM)
            try:
                rc = r.proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
                results[name] = (False, f"still running {limit:.1f} s after SIGTERM (killed):\n"
                                 + "\n".join(r.lines()[-30:]))
                return
            took = time.monotonic() - t0
            want = 0 if where == "none" else 3 if where in ("create", "start") else 4
            what = f"exit {rc} after {took:.2f} s (want {want} within {limit:.1f} s)"
            missing = [l for l in EXPECT_LOG.get(name, [])
                       if not any(l in line for line in r.lines())]
            if missing:
                what += f"; the log lacks {missing}"
            ok = rc == want and took <= limit and not missing
            results[name] = (ok, what if ok else what + ":\n" + "\n".join(r.lines()[-30:]))
        except Exception as e:  # a broken case must not hide the others
            results[name] = (False, f"{type(e).__name__}: {e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", required=True)
    ap.add_argument("--deadline", type=float, default=2.0,
                    help="the router's shutdown deadline in seconds (--shutdown-timeout)")
    ap.add_argument("--only", help="run only the case kind.callback, e.g. exporter.consume")
    args = ap.parse_args()

    cases = [c for c in CASES if not args.only or f"{c[0]}.{c[1]}" == args.only]
    results = {}
    # The cases run side by side: each spends most of its time waiting for the
    # deadline, so running them in turn would take minutes.
    threads = [threading.Thread(target=run_case, args=(args, *c, results)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(READY_TIMEOUT + args.deadline + 10)
    failed = 0
    for kind, where, _ in cases:
        name = f"{kind}.{where}"
        ok, what = results.get(name, (False, "the case did not finish"))
        print(("ok   " if ok else "FAIL ") + f"{name}: {what}")
        failed += not ok
    if failed:
        print(f"{failed} of {len(cases)} cases failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
