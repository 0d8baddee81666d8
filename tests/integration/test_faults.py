#!/usr/bin/env python3
"""Faults under load (issue 15 item 3): each case runs `bench/loadgen --sequence`
(OTLP/HTTP, open loop, numbered span IDs, an ack log of how every request ended)
into otlp receiver -> otlphttp exporter (protobuf, no compression) -> the counting
sink of tests/soak/seq_sink.py, injects one fault, and then compares span by span
what the client was told was accepted with what reached the sink:

  lost        acknowledged, never at the sink (goal 0)
  duplicated  extra copies at the sink
  rejected    acknowledged, refused for good by the backend (400): counted by the
              router in exporter_send_failed_spans, not lost silently
  unacked     at the sink though the client got no 200 (a broken connection)

Cases (test_faults.py CASE --bin B --plugin-dir D --loadgen L [--long]):

  down     the backend goes down for 8 s (--long: 60 s) under load, then comes
           back: the clients are refused (429/503) once the queues are full (a
           sending queue of 4,000 spans, the core's default queue budget), the
           exporter retries, everything acknowledged arrives exactly once.
  slow     the backend takes 1 s per request (batch of 100 spans, 4 consumers: 400
           spans/s against 800 offered; a small sending queue and core queue budget
           so that the drain stays short): the clients are pushed back (429);
           0 lost, 0 duplicated.
  mixed    the backend answers in turn 500, 503, 429 + Retry-After: 1, 400, 200,
           200: 503 and 429 are retried; 400 and 500 are permanent (the OTLP
           specification retries 429, 502, 503, 504 only, as the collector does):
           the spans of those requests are the only ones missing, and exactly what
           send_failed_spans counts.
  dns      the exporter's endpoint is in `.invalid` (never resolves) with a
           persistent queue: the data is acknowledged and kept, every attempt
           fails and is counted as a retry, nothing is given up (max_elapsed_time
           0), the router does not crash; a SIGHUP reload with the right name
           delivers everything exactly once.
  dns_memory  the same with the sending queue in memory: the reload replaces the
           exporter, and its old self hands its queue (the core's and the sending
           queue) to the new instance: 0 lost, 0 duplicated, nothing counted as
           failed, and new data is delivered after the fix.
  disk     a persistent queue on a "full disk" (RLIMIT_FSIZE 256 KiB, SIGXFSZ
           ignored: writes fail with EFBIG) with the backend down: the clients are
           refused once it is full; backend up: everything acknowledged arrives
           exactly once.
  kill9    kill -9 in the middle of load with a persistent queue, restart on the
           same ports (loadgen keeps sending and reconnects): lost is bounded by
           the in-memory window between the acknowledgement and the disk.
  reload   10 SIGHUP reloads (the exporter's settings change each time) under
           load: 0 lost, 0 duplicated.

Python standard library only; every wait is bounded.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "soak"))
from harness import Router, free_port, http  # noqa: E402
from seq_sink import SeqSink, check_loadgen  # noqa: E402
from test_persistent_queue import FSIZE_WRAPPER, sample, scrape  # noqa: E402
from test_reload import count_reloaded, metric  # noqa: E402

SPR = 20  # spans per request
WAIT = 30.0


def config(port, mport, endpoint, storage_dir=None, extra_exporter="", consumers=4,
           queue_size=20000, processors=""):
    ext = f"""extensions:
  file_storage:
    directory: {storage_dir}
""" if storage_dir else ""
    storage = "      storage: file_storage\n" if storage_dir else ""
    return f"""{ext}receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  otlphttp:
    endpoint: {endpoint}
    compression: none
    timeout: 5s
{extra_exporter}    sending_queue:
{storage}      sizer: items
      queue_size: {queue_size}
      num_consumers: {consumers}
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 0s
service:
{"  extensions: [file_storage]" if storage_dir else ""}
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [{"batch" if processors else ""}]
      exporters: [otlphttp]
{processors}"""


class Case:
    """A router, a sink, loadgen, and the figures."""

    def __init__(self, args, name, sink_kwargs=None, storage=False):
        self.args, self.name = args, name
        self.tmp = tempfile.mkdtemp(prefix=f"sy-faults-{name}-")
        self.storage = os.path.join(self.tmp, "storage") if storage else None
        if storage:
            os.mkdir(self.storage)
        self.port, self.mport = free_port(), free_port()
        self.sink = SeqSink(SPR, **(sink_kwargs or {}))
        self.router = None
        self.loadgens = []
        self.peak = {}

    def start(self, endpoint=None, binary=None, **kw):
        endpoint = endpoint or f"http://127.0.0.1:{self.sink.port}"
        self.router = Router(binary or self.args.bin, [self.args.plugin_dir],
                             config(self.port, self.mport, endpoint, self.storage, **kw))
        return self.router

    def load(self, seconds, rate, client=1, connections=4):
        log = os.path.join(self.tmp, f"acks-{client}.log")
        p = subprocess.Popen(
            [self.args.loadgen, "--url", f"http://127.0.0.1:{self.port}/v1/traces",
             "--rate", str(rate), "--duration", str(seconds), "--connections", str(connections),
             "--spans-per-request", str(SPR), "--attrs", "2", "--sequence", str(client),
             "--ack-log", log, "--out", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.loadgens.append((client, log, p))
        return p

    def metric(self, name, label='exporter="otlphttp"'):
        return sample(scrape(self.mport), name, label) or 0.0

    def watch(self, names, until):
        """Samples metrics every 100 ms until until() is true; keeps the peaks."""
        while not until():
            text = scrape(self.mport)
            for n in names:
                v = sample(text, n)
                if v is not None:
                    self.peak[n] = max(self.peak.get(n, 0), v)
            time.sleep(0.1)

    def finish_load(self):
        out = []
        for client, log, p in self.loadgens:
            try:
                so, se = p.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()
                so, se = p.communicate()
                raise AssertionError(f"loadgen {client} did not finish")
            line = so.strip().splitlines()[-1] if so.strip() else "{}"
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"loadgen {client}: {so!r} {se!r}")
        return out

    def settle(self, permanent=(), timeout=WAIT):
        """Waits until every acknowledged span is at the sink (or refused for good
        with a status in `permanent`) and the exporter's queue is empty; returns the
        figures."""
        def figures():
            rs = [check_loadgen(self.sink, c, log, permanent) for c, log, _ in self.loadgens]
            tot = {}
            for r in rs:
                for k, v in r.items():
                    tot[k] = tot.get(k, 0) + v
            return tot
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            f = figures()
            total = self.sink.total()
            if total != last:
                last, since = total, time.monotonic()
            if self.metric("switchyard_exporter_queue_size") == 0 and (
                    f["lost"] == 0 or time.monotonic() - since > 3.0):
                break  # all there, or nothing more arrives and nothing is queued
            time.sleep(0.2)
        time.sleep(0.5)  # a late duplicate shows too
        return figures()

    def report(self, f, extra=""):
        retries = self.metric("switchyard_exporter_retries_total")
        failed = self.metric("switchyard_exporter_send_failed_spans_total")
        refused = sample(scrape(self.mport), "switchyard_receiver_refused_spans_total") or 0
        print(f"faults.{self.name}: acknowledged={f['acked']} lost={f['lost']} "
              f"duplicated={f['duplicated']} rejected={f['rejected']} "
              f"unacked_delivered={f['unacked_delivered']} never_sent={f['never_sent']} "
              f"requests={f['requests']} refused_requests={f['refused_requests']} "
              f"failed_requests={f['failed_requests']} receiver_refused_spans={refused:.0f} "
              f"exporter_retries={retries:.0f} send_failed_spans={failed:.0f} "
              f"sink_requests={dict(sorted(self.sink.statuses.items()))}{extra}", flush=True)
        return retries, failed

    def cleanup(self):
        for _, _, p in self.loadgens:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.router:
            self.router.cleanup()
        self.sink.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok   " + what)


def common_checks(c, f, lost_bound=0):
    expect(f["acked"] > 0, "some spans were acknowledged")
    expect(f["lost"] <= lost_bound, f"lost {f['lost']} <= {lost_bound}")
    expect(f["never_sent"] == 0, "nothing at the sink that was never sent")
    expect(c.sink.accepted.unknown == 0, "no span of unknown origin at the sink")


def case_down(args):
    outage = 60.0 if args.long else 8.0
    c = Case(args, "down")
    try:
        c.start(queue_size=4000)
        c.load(outage + 4, 100)
        time.sleep(1.5)
        c.sink.stop()
        t_down = time.monotonic()
        c.watch(["switchyard_exporter_queue_size"], lambda: time.monotonic() - t_down >= outage)
        c.sink.start()
        c.finish_load()
        f = c.settle(timeout=WAIT + outage)
        retries, failed = c.report(f, f" outage_s={outage:.0f} "
                                      f"peak_queue={c.peak.get('switchyard_exporter_queue_size', 0):.0f}")
        common_checks(c, f)
        expect(f["duplicated"] == 0, "0 duplicated")
        expect(retries > 0, "the exporter retried while the backend was down")
        expect(f["refused_requests"] > 0, "the clients were told to retry once the queues were full")
        expect(failed == 0, "nothing given up")
        expect(c.router.stop() == 0, "the router exits 0")
    finally:
        c.cleanup()


def case_slow(args):
    c = Case(args, "slow", {"delay": 1.0})
    os.environ["SWITCHYARD_QUEUE_BUDGET"] = "256KiB"
    try:
        c.start(queue_size=400, processors="""processors:
  batch:
    send_batch_size: 100
    send_batch_max_size: 100
    timeout: 100ms
""")
        c.load(5, 40)
        lg = c.finish_load()[0]
        f = c.settle(timeout=60)
        c.report(f, f" loadgen_refused={lg.get('refused')} p99_ms={lg.get('p99_us', 0) / 1e3:.1f}")
        common_checks(c, f)
        expect(f["duplicated"] == 0, "0 duplicated")
        expect(f["refused_requests"] > 0, "the clients were told to retry (429/503)")
        expect(c.router.stop() == 0, "the router exits 0")
    finally:
        del os.environ["SWITCHYARD_QUEUE_BUDGET"]
        c.cleanup()


def case_mixed(args):
    answers = [(500, {}), (503, {}), (429, {"Retry-After": "1"}), (400, {}), (200, {}), (200, {})]
    c = Case(args, "mixed", {"answers": answers})
    try:
        c.start()
        c.load(5, 40)
        c.finish_load()
        f = c.settle(permanent=(400, 500), timeout=60)
        retries, failed = c.report(f)
        common_checks(c, f)
        expect(f["duplicated"] == 0, "0 duplicated")
        expect(f["rejected"] > 0, "some spans were refused for good (400, 500)")
        refused_for_good = sum(n for st in (400, 500) for _, n in c.sink.rejected[st].items("lg1"))
        expect(failed == f["rejected"] == refused_for_good,
               f"send_failed_spans ({failed:.0f}) = the acknowledged spans answered 400/500 "
               f"({f['rejected']}) = what the sink refused for good ({refused_for_good})")
        expect(retries >= c.sink.statuses.get(503, 0) + c.sink.statuses.get(429, 0),
               "every 503 and 429 was retried")
        expect(c.router.stop() == 0, "the router exits 0 (its shutdown gave nothing up)")
    finally:
        c.cleanup()


def case_dns(args, storage=True, name=None, queue_size=20000):
    c = Case(args, name or ("dns" if storage else "dns_memory"), storage=storage)
    try:
        bad = f"http://no-such-backend.invalid:{c.sink.port}"
        c.start(endpoint=bad, queue_size=queue_size)
        c.load(4, 50)
        c.finish_load()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and c.metric("switchyard_exporter_retries_total") < 5:
            time.sleep(0.1)
        retries = c.metric("switchyard_exporter_retries_total")
        failed = c.metric("switchyard_exporter_send_failed_spans_total")
        queued = c.metric("switchyard_exporter_queue_size")
        print(f"faults.{c.name}: before the fix: retries={retries:.0f} "
              f"send_failed_spans={failed:.0f} queued={queued:.0f} at_sink={c.sink.total()}")
        expect(c.router.proc.poll() is None, "the router runs on")
        expect(retries >= 5, "failed lookups are counted as retries")
        expect(failed == 0, "nothing is given up (max_elapsed_time: 0s)")
        expect(c.sink.total() == 0, "nothing reached the sink")
        expect(b"no-such-backend.invalid" in c.router.output_bytes(), "the log names the host")
        # The fix: the right name, applied by SIGHUP.
        with open(c.router.config, "w") as fh:
            fh.write(config(c.port, c.mport, f"http://localhost:{c.sink.port}", c.storage,
                            queue_size=queue_size))
        c.router.proc.send_signal(signal.SIGHUP)
        t_fix = time.monotonic()
        f = c.settle(timeout=WAIT)
        c.report(f, f" retries_before_fix={retries:.0f} "
                    f"delivered_s_after_sighup={time.monotonic() - t_fix:.1f}")
        common_checks(c, f)
        expect(f["duplicated"] == 0, "0 duplicated")
        if not storage:
            # The reload replaces the exporter (its endpoint changed): the old instance
            # hands its in-memory queue to the new one (exporterhelper.c "Handover")
            # instead of giving it up at the drain deadline.
            failed = c.metric("switchyard_exporter_send_failed_spans_total")
            expect(failed == 0, f"nothing counted as failed ({failed:.0f})")
            out = c.router.output_bytes()
            expect(b"Reload: handed" in out and b"Reload: took over" in out,
                   "the log says the old instance handed its queue to the new one")
            expect(c.router.proc.poll() is None, "the router runs on")
            c.load(1, 20, client=2)
            c.finish_load()
            f2 = check_loadgen(c.sink, 2, c.loadgens[-1][1])
            deadline = time.monotonic() + WAIT
            while f2["lost"] and time.monotonic() < deadline:
                time.sleep(0.2)
                f2 = check_loadgen(c.sink, 2, c.loadgens[-1][1])
            expect(f2["acked"] > 0 and f2["lost"] == 0 and f2["duplicated"] == 0,
                   f"after the fix new data is delivered ({f2['acked']} spans, exactly once)")
        expect(c.router.stop() == 0, "the router exits 0")
    finally:
        c.cleanup()


def case_dns_memory(args):
    case_dns(args, storage=False)


def case_dns_memory_full(args):
    # A sending queue of 400 spans: the rest of what was acknowledged waits in the
    # core's exporter queue, which the reload hands over too (core/runtime.c).
    case_dns(args, storage=False, name="dns_memory_full", queue_size=400)


def case_dns_removed(args):
    """The exporter that cannot deliver is removed from the configuration (another
    id takes its place): nothing takes its in-memory queue over, it keeps trying
    until the drain deadline, then every span it held is counted as failed and
    logged; nothing is lost silently."""
    c = Case(args, "dns_removed")
    try:
        c.start(endpoint=f"http://no-such-backend.invalid:{c.sink.port}")
        c.load(2, 50)
        c.finish_load()
        acked = check_loadgen(c.sink, 1, c.loadgens[0][1])["acked"]
        expect(acked > 0, f"{acked} spans acknowledged into the queue")
        text = config(c.port, c.mport, f"http://localhost:{c.sink.port}")
        text = text.replace("  otlphttp:\n", "  otlphttp/fixed:\n").replace(
            "exporters: [otlphttp]", "exporters: [otlphttp/fixed]")
        with open(c.router.config, "w") as fh:
            fh.write(text)
        c.router.proc.send_signal(signal.SIGHUP)
        t_fix = time.monotonic()
        while (time.monotonic() - t_fix < WAIT and
               c.metric("switchyard_exporter_send_failed_spans_total") < acked):
            time.sleep(0.2)
        failed = c.metric("switchyard_exporter_send_failed_spans_total")
        f = c.settle(timeout=1)
        print(f"faults.dns_removed: acknowledged={f['acked']} lost={f['lost']} "
              f"send_failed_spans={failed:.0f} given_up_after_s={time.monotonic() - t_fix:.1f}")
        expect(f["lost"] == acked and failed == acked,
               f"every span of the removed exporter's queue ({acked}) is counted in "
               f"send_failed_spans ({failed:.0f})")
        expect(b"removed from the configuration" in c.router.output_bytes(),
               "the log says why they were given up")
        c.load(1, 20, client=2)
        c.finish_load()
        f2 = check_loadgen(c.sink, 2, c.loadgens[-1][1])
        deadline = time.monotonic() + WAIT
        while f2["lost"] and time.monotonic() < deadline:
            time.sleep(0.2)
            f2 = check_loadgen(c.sink, 2, c.loadgens[-1][1])
        expect(f2["acked"] > 0 and f2["lost"] == 0 and f2["duplicated"] == 0,
               "the new exporter delivers new data exactly once")
        expect(c.router.stop() == 0, "the router exits 0")
    finally:
        c.cleanup()


def case_disk(args):
    c = Case(args, "disk", storage=True)
    try:
        limit = 256 * 1024
        wrapper = os.path.join(c.tmp, "fsize-router")
        with open(wrapper, "w") as fh:
            fh.write(FSIZE_WRAPPER % (limit, limit, limit, args.bin, args.bin))
        os.chmod(wrapper, 0o755)
        c.sink.stop()
        c.start(binary=wrapper)
        c.load(6, 100)
        c.watch([], lambda: c.loadgens[0][2].poll() is not None)
        full = c.metric("switchyard_extension_file_storage_append_full_total", "")
        c.finish_load()
        c.sink.start()
        f = c.settle(timeout=WAIT)
        c.report(f, f" append_full={full:.0f}")
        common_checks(c, f)
        expect(full > 0, "appends were refused for room")
        expect(f["refused_requests"] > 0, "the clients were told to retry")
        expect(f["duplicated"] == 0, "0 duplicated")
        expect(c.router.stop() == 0, "the router exits 0")
    finally:
        c.cleanup()


def case_kill9(args):
    c = Case(args, "kill9", storage=True)
    try:
        c.start()
        c.load(8, 100, connections=4)
        window = [0]
        t0 = time.monotonic()

        def sample_window():
            q = sample(scrape(c.mport), "switchyard_queue_size")
            if q is not None:
                window[0] = max(window[0], int(q) * SPR)
        while time.monotonic() - t0 < 3.0:
            sample_window()
            time.sleep(0.01)
        sample_window()
        c.router.kill()
        time.sleep(0.5)
        c.router.cleanup()
        c.start()
        c.finish_load()
        f = c.settle(timeout=WAIT)
        redelivered = c.metric("switchyard_exporter_persistent_queue_redelivered_records_total")
        # The receiver answers only after the durable write (settle tokens): nothing
        # acknowledged may be lost; the window is reported for comparison.
        bound = 0
        c.report(f, f" in_memory_window={window[0]} bound={bound} "
                    f"redelivered_records={redelivered:.0f}")
        common_checks(c, f, lost_bound=bound)
        expect(f["duplicated"] <= (redelivered + 4) * SPR,
               "duplicates within the requests handed out at the kill")
        expect(c.router.stop() == 0, "the restarted router exits 0")
    finally:
        c.cleanup()


def case_reload(args):
    c = Case(args, "reload")
    try:
        c.start()
        c.load(8, 100)
        time.sleep(1.0)
        reloads = 10
        for gen in range(1, reloads + 1):
            before = count_reloaded(c.router)
            with open(c.router.config, "w") as fh:
                fh.write(config(c.port, c.mport, f"http://127.0.0.1:{c.sink.port}",
                                extra_exporter=f"    headers:\n      x-gen: \"{gen}\"\n",
                                consumers=2 + gen % 3))
            c.router.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while count_reloaded(c.router) <= before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.4)
        n = metric(c.mport, "switchyard_config_reloads_total") or 0
        c.finish_load()
        f = c.settle(timeout=WAIT)
        c.report(f, f" reloads={n:.0f}")
        common_checks(c, f)
        expect(n == reloads, f"{reloads} reloads applied")
        expect(f["duplicated"] == 0, "0 duplicated")
        expect(f["failed_requests"] == 0, "no request failed or broke")
        expect(c.router.stop() == 0, "the router exits 0")
    finally:
        c.cleanup()


CASES = {"down": case_down, "slow": case_slow, "mixed": case_mixed, "dns": case_dns,
         "dns_memory": case_dns_memory,
         "dns_memory_full": case_dns_memory_full,
         "dns_removed": case_dns_removed,
         "disk": case_disk, "kill9": case_kill9, "reload": case_reload}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=list(CASES))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--long", action="store_true", help="down: a 60 s outage")
    args = ap.parse_args()
    t0 = time.monotonic()
    CASES[args.case](args)
    print(f"faults.{args.case} passed in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
