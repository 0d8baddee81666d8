"""What the deployment tests share: starting a router that runs outside the
harness's control (as another user, in a container), sending it OTLP/HTTP data
and checking that the data was accepted and arrived (the debug exporter's summary
line and the router's own metrics), and running commands with bounded time.
Python standard library only; uses tests/integration/harness.py."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import http, json_span, json_traces, post_json, wait_for  # noqa: E402
from test_health_metrics import find_sample, parse_metrics  # noqa: E402

READY_TIMEOUT = 20.0
ARRIVAL_TIMEOUT = 15.0


def run(args, timeout=60, check=True, **kw):
    """Runs a command; returns CompletedProcess (text). Raises with its output when
    check is set and it fails."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(args), p.returncode, p.stdout))
    return p


class Output:
    """A file a process writes its output to, read back as text."""

    def __init__(self, path):
        self.path = path

    def text(self):
        try:
            with open(self.path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def wait_ready(output, health_url, alive, timeout=READY_TIMEOUT):
    """Waits for the ready line and health_check answering 200; alive() says whether
    the process still runs."""
    def ready():
        if not alive():
            raise AssertionError("the router exited:\n" + output.text())
        if "Everything is ready" not in output.text():
            return False
        return http("GET", health_url, timeout=2)[0] == 200
    wait_for("the router to be ready and healthy", ready, timeout)


def counters(metrics_url):
    s = parse_metrics(http("GET", metrics_url, timeout=2)[2].decode())
    return (find_sample(s, "switchyard_receiver_accepted_spans_total", 'receiver="otlp"') or 0,
            find_sample(s, "switchyard_exporter_sent_spans_total", 'exporter="debug"') or 0)


def send_and_check(check, output, otlp_url, metrics_url, n, service):
    """Sends one OTLP/JSON request of n spans; checks it was accepted (200, no
    rejected spans), that the debug exporter wrote its summary line for it and that
    the own metrics count n more spans received and sent."""
    before = counters(metrics_url)
    spans = [json_span("%s-%d" % (service, i), span_id="%016x" % (0x1000 + i))
             for i in range(n)]
    status, _, body = post_json(otlp_url + "/v1/traces", json_traces(spans, service))
    check(status == 200, "POST /v1/traces answered %d (%r)" % (status, body[:200]))
    check(b"rejected" not in body, "no span rejected (%r)" % body[:200])
    want = (before[0] + n, before[1] + n)

    def arrived():
        got = counters(metrics_url)
        return got if got == want else None
    try:
        got = wait_for("%d spans counted received and sent" % n, arrived, ARRIVAL_TIMEOUT)
        check(True, "own metrics: otlp accepted %d, debug sent %d" % got)
    except AssertionError as e:
        check(False, str(e))
    line = 'Traces {"resource spans": 1, "spans": %d}' % n
    try:
        wait_for("the debug exporter's line", lambda: line in output.text(), ARRIVAL_TIMEOUT)
        check(True, "debug exporter wrote %s" % line)
    except AssertionError:
        check(False, "debug exporter wrote %s" % line)


def wait_exit(proc, timeout):
    """The exit code, or None after killing a process that did not exit in time."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def reloads(metrics_url):
    """switchyard_config_reloads_total (0 before the first reload)."""
    s = parse_metrics(http("GET", metrics_url, timeout=2)[2].decode())
    return find_sample(s, "switchyard_config_reloads_total", "") or 0


def reload_with_sighup(check, send_hup, alive, output, health_url, metrics_url):
    """SIGHUP (send_hup()), as `systemctl reload` sends it: the configuration is
    reloaded (counted once, logged), and the process stays up and healthy."""
    before = reloads(metrics_url)
    send_hup()
    try:
        wait_for("the reload to be counted", lambda: reloads(metrics_url) == before + 1,
                 ARRIVAL_TIMEOUT)
        check(True, "SIGHUP: switchyard_config_reloads_total %d -> %d" % (before, before + 1))
    except AssertionError as e:
        check(False, "SIGHUP: %s" % e)
    check("Configuration reloaded" in output.text(), "SIGHUP: the reload was logged")
    check(alive(), "still running after SIGHUP")
    check(http("GET", health_url, timeout=2)[0] == 200, "healthy after SIGHUP")


def verdict(check, t0):
    """Prints the time taken and every failed check; the exit code."""
    print("%.1fs" % (time.monotonic() - t0))
    if check.failures:
        print("FAILED: %d check(s):\n  %s" % (len(check.failures), "\n  ".join(check.failures)))
        return 1
    print("PASS")
    return 0
