#!/usr/bin/env python3
"""The `subprocess` processor and exporter (docs/subprocess.md) through the real
binary and loader, with tests/integration/subprocess_child.py as the child.

Each case runs testgen as fast as the pipeline takes it (back-pressure included)
through a child that fails once or several times on purpose, and checks that the
router stays up, that its own metrics count the failure and the restart, and that
every span arrives. The processor's delivery is exactly once (the answers of a
child that went away are discarded and the batch is sent again whole), checked
span by span by testsink's verify report; the exporter's is at least once, and
the test counts the duplicates its child wrote.

  crash     processor; the child aborts (SIGABRT) three times under load
  leak      processor; the child allocates until limits.memory_mib stops it
  hang      processor; the child never answers its first request: timeout, restart
  hello     processor; the child answers the hello with another protocol's name
  host      processor; the child is switchyard-plugin-host running the test kit's
            testmutate .so, killed with SIGKILL under load
  host_attributes  switchyard-plugin-host running the in-tree attributes processor
            with a YAML snippet (checked in the file exporter's output); a snippet
            the plugin refuses: the router gives up after max_restarts
  host_noflag  switchyard-plugin-host running testmutate_noflag: copy-on-write
            refuses its change in the child as in the router
  host_exporter  switchyard-plugin-host running the test kit's testsink as a slow
            exporter (declines and ready())
  poison    processor; the child aborts twice on the same request: given up
            (max_attempts), counted, every other span delivered
  nack      processor; the child refuses every 7th request: counted, not delivered
  cpu       processor; the child spins until limits.cpu_seconds (SIGXCPU)
  never     restart.policy never: the first crash gives up; delivered + dropped
            + refused add up to what was sent
  drain     SIGTERM while a slow child holds batches: they are answered and
            delivered; what arrives is the accepted prefix, once each
  exporter  exporter; the child (writing what it gets to a file) aborts twice
  badcmd    a command that does not exist: a clear error, the router does not start
  path      the command is looked up in the PATH that `env` gives the child

    test_subprocess.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins \
        --kit-dir build/tests/plugins --host build/bin/switchyard-plugin-host [cases...]
"""
import argparse
import os
import re
import shutil
import struct
import sys
import tempfile
import time

from harness import Checks, Router, free_port, http, read_varint

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "subprocess_child.py")
BATCHES, SPANS = 300, 20
TOTAL = BATCHES * SPANS


DIRS = []


def workdir():
    """A temporary directory, removed when the test ends."""
    DIRS.append(tempfile.mkdtemp(prefix="sy-sp-"))
    return DIRS[-1]


def metrics(port):
    """{name: value} of every sample of the subprocess instance and the sink, with
    the labels dropped (one instance of each per router here)."""
    _, _, body = http("GET", "http://127.0.0.1:%d/metrics" % port)
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r"^(switchyard_[a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if m and ("subprocess" in (m.group(2) or "") or "testsink" in (m.group(2) or "")):
            out[m.group(1)] = float(m.group(3))
    return out


def wait_metric(port, name, want, timeout):
    deadline = time.monotonic() + timeout
    got = {}
    while time.monotonic() < deadline:
        got = metrics(port)
        if got.get(name, 0) >= want:
            return got
        time.sleep(0.1)
    print("timed out waiting for %s >= %s (last %s)" % (name, want, got.get(name)),
          file=sys.stderr)
    return got


def config(workdir, port, kind, child_env, extra="", sink_report=None):
    # Defaults of these tests, unless the case sets the key itself.
    for key, line in (("timeout:", "    timeout: 5s\n"), ("max_in_flight:", "    max_in_flight: 8\n"),
                      ("restart:", "    restart: {initial_interval: 20ms, max_interval: 200ms, "
                                   "max_restarts: 20}\n")):
        if key not in extra:
            extra += line
    env = "\n".join('      %s: "%s"' % kv for kv in sorted(child_env.items()))
    sp = f"""
  subprocess:
    command: [python3, {CHILD}]
    env:
      SP_STATE: "{workdir}"
{env}
{extra}"""
    sink = f"""
  testsink:
    verify: true
    max_seq: {TOTAL}
    report_path: {sink_report}"""
    if kind == "processor":
        processors, exporters = sp, sink
        pipeline = "      processors: [subprocess]\n      exporters: [testsink]"
    else:
        processors, exporters = "\n  nop:", sp
        pipeline = "      processors: [nop]\n      exporters: [subprocess]"
    return f"""
receivers:
  testgen: {{count: {BATCHES}, spans: {SPANS}}}
processors:{processors}
exporters:{exporters}
service:
  telemetry:
    logs: {{level: info}}
    metrics: {{address: 127.0.0.1:{port}}}
  pipelines:
    traces:
      receivers: [testgen]
{pipeline}
"""


def read_report(path):
    with open(path) as f:
        return {k: int(v) for k, v in (kv.split("=") for kv in f.read().split())}


def run_processor_case(args, check, name, child_env, extra, expect, resent=True, lost=0):
    """Runs one processor case; `expect` maps metric names to the exact values.
    `lost` spans (the first ones the child refuses or that are given up) are
    expected not to arrive, every other one exactly once."""
    work = workdir()
    port = free_port()
    report = os.path.join(work, "report")
    with Router(args.bin, [args.plugin_dir, args.kit_dir],
                config(work, port, "processor", child_env, extra, report)) as r:
        m = wait_metric(port, "switchyard_exporter_sent_spans_total", TOTAL - lost, 60)
        time.sleep(0.2 if lost else 0)  # nothing more is coming
        m = metrics(port) if lost else m
        check(r.proc.poll() is None, f"{name}: the router is still running")
        expect.setdefault("switchyard_subprocess_items_dropped_total", 0)
        for metric, want in expect.items():
            check(m.get(metric) == want, f"{name}: {metric} == {want} (got {m.get(metric)})")
        check((m.get("switchyard_subprocess_batches_resent_total", 0) >= 1) == resent,
              f"{name}: what was in flight was sent again: {resent} "
              f"({m.get('switchyard_subprocess_batches_resent_total')})")
        check(m.get("switchyard_subprocess_child_up") == 1, f"{name}: a child is up")
        check(m.get("switchyard_processor_outgoing_spans_total") == TOTAL - lost,
              f"{name}: the processor emitted {TOTAL - lost} spans "
              f"({m.get('switchyard_processor_outgoing_spans_total')})")
        rc = r.stop()
        check(rc == 0, f"{name}: the router drains and exits 0 (got {rc})")
        rep = read_report(report)
        check(rep["items"] == TOTAL - lost and rep["distinct"] == TOTAL - lost
              and rep["duplicates"] == 0 and rep["out_of_range"] == 0
              and rep["undecodable"] == 0,
              f"{name}: every span {'but the refused ' if lost else ''}delivered exactly once "
              f"({rep})")
        if check.failures:
            r.dump(60, f"[{name}] ")
        return r.output()


def case_crash(args, check):
    out = run_processor_case(
        args, check, "crash", {"SP_CRASH_AFTER": "20", "SP_CRASH_TIMES": "3"}, "",
        {"switchyard_subprocess_child_crashes_total": 3,
         "switchyard_subprocess_crashes_sigabrt_total": 3,
         "switchyard_subprocess_child_restarts_total": 3,
         "switchyard_subprocess_child_starts_total": 4,
         "switchyard_subprocess_timeouts_total": 0,
         "switchyard_subprocess_in_flight": 0})
    check(out.count("crashed: signal 6") == 3, "crash: each crash logged with its signal")


def case_leak(args, check):
    out = run_processor_case(
        args, check, "leak", {"SP_LEAK_AFTER": "10"}, "    limits: {memory_mib: 256}\n",
        {"switchyard_subprocess_child_failed_exits_total": 1,
         "switchyard_subprocess_child_crashes_total": 0,
         "switchyard_subprocess_child_restarts_total": 1})
    check("MemoryError" in out, "leak: the child hit its memory limit (MemoryError)")
    check("exited with status 1" in out, "leak: its exit logged")


def case_hang(args, check):
    out = run_processor_case(
        args, check, "hang", {"SP_HANG": "1"}, "    timeout: 1s\n",
        {"switchyard_subprocess_timeouts_total": 1,
         "switchyard_subprocess_child_crashes_total": 0,
         "switchyard_subprocess_child_restarts_total": 1})
    check("a request went unanswered for longer than the timeout" in out, "hang: logged")


def case_hello(args, check):
    out = run_processor_case(
        args, check, "hello", {"SP_BAD_HELLO": "1"}, "",
        {"switchyard_subprocess_protocol_errors_total": 1,
         "switchyard_subprocess_child_restarts_total": 1}, resent=False)
    check('the hello does not start with "switchyard-subprocess/1"' in out, "hello: logged")


def case_poison(args, check):
    # The child aborts on the first request it gets, twice: with one request in
    # flight at a time and max_attempts 2, that batch is given up as a poison pill.
    run_processor_case(
        args, check, "poison", {"SP_CRASH_AFTER": "0", "SP_CRASH_TIMES": "2"},
        "    max_attempts: 2\n    max_in_flight: 1\n",
        {"switchyard_subprocess_child_crashes_total": 2,
         "switchyard_subprocess_child_restarts_total": 2,
         "switchyard_subprocess_batches_resent_total": 1,
         "switchyard_subprocess_items_dropped_total": SPANS}, resent=True, lost=SPANS)


def case_nack(args, check):
    every = 7
    run_processor_case(
        args, check, "nack", {"SP_NACK_EVERY": str(every)}, "",
        {"switchyard_subprocess_items_nacked_total": BATCHES // every * SPANS,
         "switchyard_subprocess_child_restarts_total": 0,
         "switchyard_subprocess_child_crashes_total": 0},
        resent=False, lost=BATCHES // every * SPANS)


def case_cpu(args, check):
    out = run_processor_case(
        args, check, "cpu", {"SP_SPIN": "1"}, "    limits: {cpu_seconds: 1}\n    timeout: 30s\n",
        {"switchyard_subprocess_crashes_sigxcpu_total": 1,
         "switchyard_subprocess_child_crashes_total": 1,
         "switchyard_subprocess_timeouts_total": 0,
         "switchyard_subprocess_child_restarts_total": 1})
    check("crashed: signal 24" in out, "cpu: the CPU limit's SIGXCPU logged")


def case_never(args, check):
    """restart.policy never: the first crash gives up; what was held is dropped and
    counted, later batches are refused (counted by the host), the router stays up."""
    work = workdir()
    port = free_port()
    report = os.path.join(work, "report")
    text = config(work, port, "processor", {"SP_CRASH_AFTER": "20", "SP_CRASH_TIMES": "1"},
                  "    restart: {policy: never}\n", report)
    with Router(args.bin, [args.plugin_dir, args.kit_dir], text) as r:
        deadline = time.monotonic() + 20
        m = {}
        while time.monotonic() < deadline:
            m = metrics(port)
            done = (m.get("switchyard_exporter_sent_spans_total", 0)
                    + m.get("switchyard_subprocess_items_dropped_total", 0)
                    + m.get("switchyard_processor_refused_spans_total", 0))
            if done >= TOTAL:
                break
            time.sleep(0.1)
        check(r.proc.poll() is None, "never: the router is still running")
        for metric, want in {"switchyard_subprocess_child_crashes_total": 1,
                             "switchyard_subprocess_child_restarts_total": 0,
                             "switchyard_subprocess_child_up": 0}.items():
            check(m.get(metric) == want, f"never: {metric} == {want} (got {m.get(metric)})")
        sent = m.get("switchyard_exporter_sent_spans_total", 0)
        dropped = m.get("switchyard_subprocess_items_dropped_total", 0)
        refused = m.get("switchyard_processor_refused_spans_total", 0)
        check(sent >= 20 * SPANS and dropped + refused > 0
              and sent + dropped + refused == TOTAL,
              f"never: delivered {sent} + dropped {dropped} + refused {refused} == {TOTAL}")
        check("giving up on the child (restart.policy is never)" in r.output(),
              "never: the giving up logged")
        rc = r.stop()
        check(rc == 0, f"never: the router exits 0 (got {rc})")
        rep = read_report(report)
        check(rep["items"] == sent and rep["duplicates"] == 0,
              f"never: the sink got what was counted delivered, once ({rep})")
        if check.failures:
            r.dump(40, "[never] ")


def case_drain(args, check):
    """SIGTERM while a slow child holds batches: the processor's shutdown waits for
    their answers (drain_timeout) and hands them on; the spans that arrive are
    exactly the prefix of testgen's numbering that was accepted, each once."""
    work = workdir()
    port = free_port()
    report = os.path.join(work, "report")
    counts = os.path.join(work, "counts")
    text = config(work, port, "processor", {"SP_DELAY_MS": "5"}, "", report).replace(
        f"report_path: {report}", f"report_path: {report}\n    counts_path: {counts}")
    with Router(args.bin, [args.plugin_dir, args.kit_dir], text) as r:
        m = wait_metric(port, "switchyard_subprocess_items_sent_total", TOTAL // 4, 20)
        check(m.get("switchyard_subprocess_in_flight", 0) > 0,
              f"drain: requests in flight at SIGTERM ({m.get('switchyard_subprocess_in_flight')})")
        rc = r.stop()
        check(rc == 0, f"drain: the router drains and exits 0 (got {rc})")
        with open(counts, "rb") as f:
            seen = f.read()
        k = seen.find(b"\0")
        k = len(seen) if k < 0 else k
        check(k >= TOTAL // 4 and all(c == 1 for c in seen[:k]) and not any(seen[k:]),
              f"drain: spans 0..{k - 1} arrived once each and nothing after "
              f"(multiplicities {sorted(set(seen))})")
        check("drain_timeout" not in r.output(), "drain: nothing left at the drain deadline")
        if check.failures:
            r.dump(40, "[drain] ")


def span_ids(data):
    """The span_id of every span in a file of length-prefixed
    ExportTraceServiceRequests."""
    def fields(buf):
        i = 0
        while i < len(buf):
            key, i = read_varint(buf, i)
            num, wt = key >> 3, key & 7
            if wt == 0:
                v, i = read_varint(buf, i)
            elif wt == 1:
                v, i = buf[i:i + 8], i + 8
            elif wt == 5:
                v, i = buf[i:i + 4], i + 4
            elif wt == 2:
                n, i = read_varint(buf, i)
                v, i = buf[i:i + n], i + n
            else:
                raise ValueError("wire type %d" % wt)
            yield num, v

    pos = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        req = data[pos + 4:pos + 4 + n]
        pos += 4 + n
        for f1, rs in fields(req):
            for f2, ss in (x for x in fields(rs) if f1 == 1):
                for f3, span in (x for x in fields(ss) if f2 == 2):
                    for f4, sid in (x for x in fields(span) if f3 == 2):
                        if f4 == 2:
                            yield int.from_bytes(sid, "big")


def case_exporter(args, check):
    work = workdir()
    port = free_port()
    sink = os.path.join(work, "sink.bin")
    env = {"SP_CRASH_AFTER": "15", "SP_CRASH_TIMES": "2", "SP_SINK": sink}
    with Router(args.bin, [args.plugin_dir, args.kit_dir],
                config(work, port, "exporter", env)) as r:
        m = wait_metric(port, "switchyard_exporter_sent_spans_total", TOTAL, 30)
        check(r.proc.poll() is None, "exporter: the router is still running")
        for metric, want in {"switchyard_subprocess_child_crashes_total": 2,
                             "switchyard_subprocess_crashes_sigabrt_total": 2,
                             "switchyard_subprocess_child_restarts_total": 2,
                             "switchyard_exporter_sent_spans_total": TOTAL,
                             "switchyard_subprocess_items_dropped_total": 0}.items():
            check(m.get(metric) == want, f"exporter: {metric} == {want} (got {m.get(metric)})")
        check(m.get("switchyard_exporter_send_failed_spans_total", 0) == 0,
              "exporter: nothing failed")
        rc = r.stop()
        check(rc == 0, f"exporter: the router drains and exits 0 (got {rc})")
        with open(sink, "rb") as f:
            ids = list(span_ids(f.read()))
        distinct = set(ids)
        check(distinct == set(range(TOTAL)),
              f"exporter: every span reached the child ({len(distinct)} of {TOTAL} distinct)")
        print(f"exporter: {len(ids) - len(distinct)} duplicates (at least once)")
        check(len(ids) - len(distinct) <= 2 * 8 * SPANS,
              "exporter: duplicates bounded by what was in flight at the crashes")
        if check.failures:
            r.dump(60, "[exporter] ")


def case_badcmd(args, check):
    # A script whose interpreter is missing passes the load-time check (it exists
    # and is executable) and fails when the child is spawned, at start().
    script = os.path.join(workdir(), "child.sh")
    with open(script, "w") as f:
        f.write("#!/nonexistent/interpreter\n")
    os.chmod(script, 0o755)
    for cmd, want in ((f"[{script}]", f"command: cannot start `{script}`: no such file"),
                      ("[/nonexistent/sy-child]",
                       "command: `/nonexistent/sy-child` cannot be run: No such file"),
                      ("[sy-no-such-program-xyz]",
                       "command: `sy-no-such-program-xyz` was not found in PATH")):
        text = f"""
receivers:
  testgen: {{count: 1}}
processors:
  subprocess:
    command: {cmd}
exporters:
  testsink:
service:
  pipelines:
    traces: {{receivers: [testgen], processors: [subprocess], exporters: [testsink]}}
"""
        r = Router(args.bin, [args.plugin_dir, args.kit_dir], text, wait=False)
        try:
            rc = r.proc.wait(timeout=10)
        except Exception:
            rc = None
        out = r.output()
        r.cleanup()
        check(rc not in (None, 0), f"badcmd {cmd}: the router refuses to start (exit {rc})")
        check(want in out, f"badcmd {cmd}: the error says why")
        if want not in out:
            print(out, file=sys.stderr)


def case_host(args, check):
    """switchyard-plugin-host running the test kit's testmutate processor (renames
    each span in place to "mut." + name): killed with SIGKILL under load."""
    work = workdir()
    port = free_port()
    report = os.path.join(work, "report")
    text = f"""
receivers:
  testgen: {{count: {BATCHES}, spans: {SPANS}, interval: 4ms}}
processors:
  subprocess:
    command: [{args.host}, --plugin-dir, {args.kit_dir}, processor, testmutate]
    restart: {{initial_interval: 20ms}}
    max_in_flight: 4
exporters:
  testsink: {{verify: true, digest: true, max_seq: {TOTAL}, report_path: {report}}}
service:
  telemetry:
    logs: {{level: info}}
    metrics: {{address: 127.0.0.1:{port}}}
  pipelines:
    traces: {{receivers: [testgen], processors: [subprocess], exporters: [testsink]}}
"""
    with Router(args.bin, [args.plugin_dir, args.kit_dir], text) as r:
        wait_metric(port, "switchyard_subprocess_items_sent_total", TOTAL // 4, 20)
        pids = re.findall(r"child pid (\d+) started", r.output())
        check(len(pids) == 1, f"host: one child so far ({pids})")
        if pids:
            os.kill(int(pids[0]), 9)
        m = wait_metric(port, "switchyard_exporter_sent_spans_total", TOTAL, 30)
        check(r.proc.poll() is None, "host: the router is still running")
        sent_before_end = m.get("switchyard_subprocess_items_sent_total", 0)
        for metric, want in {"switchyard_subprocess_child_crashes_total": 1,
                             "switchyard_subprocess_crashes_sigkill_total": 1,
                             "switchyard_subprocess_child_restarts_total": 1,
                             "switchyard_subprocess_items_dropped_total": 0,
                             "switchyard_processor_outgoing_spans_total": TOTAL}.items():
            check(m.get(metric) == want, f"host: {metric} == {want} (got {m.get(metric)})")
        check(sent_before_end >= TOTAL, f"host: {sent_before_end} items sent to the children")
        rc = r.stop()
        check(rc == 0, f"host: the router drains and exits 0 (got {rc})")
        rep = read_report(report)
        check(rep["items"] == TOTAL and rep["distinct"] == TOTAL and rep["duplicates"] == 0,
              f"host: every span delivered exactly once ({rep})")
        check(rep["names1"] == TOTAL and rep["names0"] == 0 and rep["names2"] == 0,
              f"host: the hosted plugin renamed every span once "
              f"(names0={rep['names0']} names1={rep['names1']} names2={rep['names2']})")
        check("speaks switchyard-subprocess/1 switchyard-plugin-host processor testmutate"
              in r.output(), "host: the host's hello names the plugin")
        if check.failures:
            r.dump(60, "[host] ")


def case_host_attributes(args, check):
    """switchyard-plugin-host running the in-tree attributes processor with its YAML
    snippet; the file exporter shows the attribute on every span."""
    import json
    work = workdir()
    port = free_port()
    out = os.path.join(work, "out.json")
    snippet = "{actions: [{key: hosted.by, value: plugin-host, action: insert}]}"
    text = f"""
receivers:
  testgen: {{count: 50, spans: 10}}
processors:
  subprocess:
    command: [{args.host}, --plugin-dir, {args.plugin_dir}, --config-yaml, "{snippet}",
              processor, attributes]
exporters:
  file: {{path: {out}}}
service:
  telemetry:
    metrics: {{address: 127.0.0.1:{port}}}
  pipelines:
    traces: {{receivers: [testgen], processors: [subprocess], exporters: [file]}}
"""
    with Router(args.bin, [args.plugin_dir, args.kit_dir], text) as r:
        wait_metric(port, "switchyard_processor_outgoing_spans_total", 500, 20)
        rc = r.stop()
        check(rc == 0, f"host_attributes: the router exits 0 (got {rc})")
        spans = []
        with open(out) as f:
            for line in f:
                for rs in json.loads(line)["resourceSpans"]:
                    for ss in rs["scopeSpans"]:
                        spans += ss["spans"]
        tagged = [s for s in spans
                  if {"key": "hosted.by", "value": {"stringValue": "plugin-host"}}
                  in s.get("attributes", [])]
        check(len(spans) == 500 and len(tagged) == 500,
              f"host_attributes: every span has hosted.by=plugin-host ({len(tagged)} of "
              f"{len(spans)})")
        if check.failures:
            r.dump(40, "[host_attributes] ")
    # A snippet the plugin refuses: the host says why on stderr (the router's log)
    # and exits 1 at each start; the router gives up after max_restarts and stays up.
    bad_text = text.replace("action: insert", "action: explode").replace(
        "              processor, attributes]",
        "              processor, attributes]\n"
        "    restart: {initial_interval: 10ms, max_restarts: 2}")
    with Router(args.bin, [args.plugin_dir, args.kit_dir], bad_text) as bad:
        lines = bad.wait_output("giving up", lambda ls: any("giving up on the child" in x
                                                            for x in ls), 20)
        out_text = bad.output()
        check(lines is not None and bad.proc.poll() is None,
              "host_attributes: a refused snippet: the router gives up on the child, stays up")
        check("explode" in out_text, "host_attributes: the host's error names the bad value")
        check(out_text.count("the plugin did not start") == 3
              and out_text.count("exited with status 1") == 3,
              "host_attributes: three starts, each failing in the plugin and exiting 1")
        if check.failures:
            bad.dump(30, "[host_attributes bad] ")


def case_host_noflag(args, check):
    """switchyard-plugin-host running testmutate_noflag, which changes batches
    without declaring SY_PLUGIN_MUTATES_DATA: the core's copy-on-write refuses it
    in the child as in the router, and the spans pass unchanged."""
    work = workdir()
    port = free_port()
    report = os.path.join(work, "report")
    text = f"""
receivers:
  testgen: {{count: 20, spans: 5}}
processors:
  subprocess:
    command: [{args.host}, --plugin-dir, {args.kit_dir}, processor, testmutate_noflag]
exporters:
  testsink: {{verify: true, digest: true, max_seq: 100, report_path: {report}}}
service:
  telemetry:
    metrics: {{address: 127.0.0.1:{port}}}
  pipelines:
    traces: {{receivers: [testgen], processors: [subprocess], exporters: [testsink]}}
"""
    with Router(args.bin, [args.plugin_dir, args.kit_dir], text) as r:
        m = wait_metric(port, "switchyard_exporter_sent_spans_total", 100, 20)
        check(m.get("switchyard_subprocess_child_crashes_total") == 0,
              "host_noflag: the child did not crash")
        rc = r.stop()
        check(rc == 0, f"host_noflag: the router exits 0 (got {rc})")
        rep = read_report(report)
        check(rep["distinct"] == 100 and rep["names0"] == 100 and rep["names1"] == 0,
              f"host_noflag: every span once, unchanged ({rep})")
        check("batch_request_mut refused for plugin testmutate_noflag (pipeline plugin-host)"
              in r.output(), "host_noflag: the refusal logged by the child")


def case_host_exporter(args, check):
    """switchyard-plugin-host running the test kit's testsink as an exporter, slow
    (it declines while busy and calls ready(): the host's retry path)."""
    work = workdir()
    port = free_port()
    report = os.path.join(work, "report")
    snippet = f"{{delay: 2ms, verify: true, max_seq: {TOTAL}, report_path: {report}}}"
    text = f"""
receivers:
  testgen: {{count: {BATCHES}, spans: {SPANS}}}
processors:
  nop:
exporters:
  subprocess:
    command: [{args.host}, --plugin-dir, {args.kit_dir}, --config-yaml, "{snippet}",
              exporter, testsink]
service:
  telemetry:
    metrics: {{address: 127.0.0.1:{port}}}
  pipelines:
    traces: {{receivers: [testgen], processors: [nop], exporters: [subprocess]}}
"""
    with Router(args.bin, [args.plugin_dir, args.kit_dir], text) as r:
        m = wait_metric(port, "switchyard_exporter_sent_spans_total", TOTAL, 30)
        check(m.get("switchyard_exporter_sent_spans_total") == TOTAL,
              f"host_exporter: {TOTAL} spans acknowledged by the child")
        rc = r.stop()
        check(rc == 0, f"host_exporter: the router exits 0 (got {rc})")
        try:
            rep = read_report(report)
        except OSError as e:
            rep = {"error": str(e)}
        check(rep.get("items") == TOTAL and rep.get("distinct") == TOTAL
              and rep.get("duplicates") == 0,
              f"host_exporter: the hosted sink saw every span once ({rep})")
        if check.failures:
            r.dump(40, "[host_exporter] ")


def case_path(args, check):
    """The command is looked up in the PATH that `env` gives the child: found there,
    `switchyard validate` accepts it; without that PATH it says it is not found."""
    import subprocess
    d = workdir()
    prog = os.path.join(d, "sy-sp-child-only-here")
    shutil.copy(CHILD, prog)
    os.chmod(prog, 0o755)
    for env, want_rc, want in ((f'{{PATH: "{d}:/usr/bin:/bin"}}', 0, "configuration is valid"),
                               ("{PATH: /usr/bin:/bin}", 1,
                                "command: `sy-sp-child-only-here` was not found in PATH")):
        cfg = os.path.join(d, "c.yaml")
        with open(cfg, "w") as f:
            f.write(f"""
receivers:
  testgen: {{count: 1}}
processors:
  subprocess:
    command: [sy-sp-child-only-here]
    env: {env}
exporters:
  testsink:
service:
  pipelines:
    traces: {{receivers: [testgen], processors: [subprocess], exporters: [testsink]}}
""")
        p = subprocess.run([args.bin, "validate", "--config", cfg, "--plugin-dir", args.kit_dir,
                            "--plugin-dir", args.plugin_dir], capture_output=True, text=True,
                           timeout=20)
        out = p.stdout + p.stderr
        check(p.returncode == want_rc and want in out,
              f"path: env {env}: validate exits {want_rc} and says {want!r} "
              f"(got {p.returncode}: {out.strip()[-200:]})")


CASES = {"crash": case_crash, "leak": case_leak, "hang": case_hang, "hello": case_hello,
         "poison": case_poison, "nack": case_nack, "cpu": case_cpu, "never": case_never, "drain": case_drain,
         "exporter": case_exporter, "badcmd": case_badcmd, "path": case_path, "host": case_host,
         "host_attributes": case_host_attributes, "host_exporter": case_host_exporter,
         "host_noflag": case_host_noflag}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", required=True)
    ap.add_argument("--host", required=True, help="the switchyard-plugin-host binary")
    ap.add_argument("cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    check = Checks()
    try:
        for name in args.cases:
            t = time.monotonic()
            CASES[name](args, check)
            print(f"-- {name}: {time.monotonic() - t:.1f} s")
    finally:
        for d in DIRS:
            shutil.rmtree(d, ignore_errors=True)
    print("%d checks failed" % len(check.failures) if check.failures else "all checks passed")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
