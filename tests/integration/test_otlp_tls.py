#!/usr/bin/env python3
"""OTLP/gRPC over TLS: the otlp receiver's TLS server against the otlp exporter's TLS
client (libcurl), two routers chained, with throwaway certificates made by the
openssl CLI in a temporary directory.

    test_otlp_tls.py --bin ... --plugin-dir ... --kit-dir ... [--node-dir BUILD/otel-js-node]

Cases:
  tls       B: otlp receiver (grpc, tls cert/key) -> testsink (verify); A: testgen -> otlp
            exporter (tls.ca_file) -> B: every span arrives once (small and large messages).
  mtls      B with tls.client_ca_file: A without a client certificate fails (counted as
            send_failed by A, as a failed handshake by B); with cert_file/key_file it
            delivers everything.
  skip      B's certificate is from another CA: A with tls.ca_file fails, with
            insecure_skip_verify delivers.
  cleartext an h2c client (the otlp exporter with tls.insecure, and a raw socket
            sending the HTTP/2 preface) to the TLS port: the connection is closed and
            counted (one warning), the router stays up and exits 0 on SIGTERM; then
            reload_interval serves a replaced certificate to new connections.
  config    a missing key file and a bad min_version fail startup with a message naming them.
  js        (with --node-dir holding the OpenTelemetry JS SDK, see test_otel_js.py setup)
            node/send.mjs --protocol grpc over https://, trusting the CA through
            OTEL_EXPORTER_OTLP_CERTIFICATE: B accepts every item the SDK exported.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Checks, Router, free_port, http, wait_for  # noqa: E402

WAIT = 30.0
NODE_TIMEOUT = 90.0


# ---- certificates ------------------------------------------------------------------------

def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=30)


def make_pki(d):
    """Two CAs; a server certificate for 127.0.0.1/localhost from each; a client
    certificate from the first. Returns a dict of paths."""
    p = {k: os.path.join(d, k) for k in (
        "ca.pem", "ca.key", "other_ca.pem", "other_ca.key", "server.pem", "server.key",
        "other_server.pem", "other_server.key", "client.pem", "client.key")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other_ca"):
        openssl("req", "-x509", *ec, "-keyout", p[ca + ".key"], "-out", p[ca + ".pem"],
                "-days", "2", "-subj", "/CN=switchyard test " + ca,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    leafs = [("server", "ca", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
             ("other_server", "other_ca", "serverAuth",
              "subjectAltName=IP:127.0.0.1,DNS:localhost"),
             ("client", "ca", "clientAuth", None)]
    for name, ca, eku, san in leafs:
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n" % eku)
            if san:
                f.write(san + "\n")
        csr = os.path.join(d, name + ".csr")
        openssl("req", "-new", *ec, "-keyout", p[name + ".key"], "-out", csr,
                "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", csr, "-CA", p[ca + ".pem"], "-CAkey", p[ca + ".key"],
                "-CAcreateserial", "-out", p[name + ".pem"], "-days", "2", "-extfile", ext)
    return p


# ---- routers -----------------------------------------------------------------------------

def telemetry(port):
    return f"service:\n  telemetry:\n    metrics:\n      address: 127.0.0.1:{port}\n"


def pipeline(receiver, exporter, signals=("traces",)):
    out = "  pipelines:\n"
    for s in signals:
        out += f"    {s}:\n      receivers: [{receiver}]\n      exporters: [{exporter}]\n"
    return out


class Backend:
    """Router B: the otlp receiver serving OTLP/gRPC over TLS into testsink."""

    def __init__(self, args, tmp, tls_lines, signals=("traces",)):
        self.port, self.mport = free_port(), free_port()
        self.report = os.path.join(tmp, "report-%d.txt" % self.port)
        tls = "".join("          %s\n" % line for line in tls_lines)
        config = f"""receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{self.port}
        tls:
{tls}exporters:
  testsink:
    verify: true
    report_path: {self.report}
""" + telemetry(self.mport) + pipeline("otlp", "testsink", signals)
        self.router = Router(args.bin, [args.kit_dir, args.plugin_dir], config)

    def metric(self, name):
        return metric(self.mport, name)

    def stop(self):
        """Stops B; returns (exit code, the testsink report as a dict)."""
        rc = self.router.stop(timeout=60)
        report = {}
        if os.path.exists(self.report):
            with open(self.report) as f:
                for part in f.read().split():
                    k, _, v = part.partition("=")
                    report[k] = int(v)
        return rc, report


def metric(port, name):
    """The sum of every sample of `name` on a router's telemetry endpoint."""
    status, _, body = http("GET", f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return 0.0
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def sender(args, backend_port, tls_lines, count, spans, first_seq=0, retry=True):
    """Router A: testgen -> the otlp exporter with `tls_lines` to B."""
    tls = "".join("      %s\n" % line for line in tls_lines)
    retry_block = ("    retry_on_failure:\n      initial_interval: 100ms\n"
                   "      max_interval: 500ms\n") if retry else \
        "    retry_on_failure:\n      enabled: false\n"
    mport = free_port()
    config = f"""receivers:
  testgen:
    count: {count}
    spans: {spans}
    first_seq: {first_seq}
exporters:
  otlp:
    endpoint: 127.0.0.1:{backend_port}
    timeout: 5s
{retry_block}    tls:
{tls}""" + telemetry(mport) + pipeline("testgen", "otlp")
    router = Router(args.bin, [args.kit_dir, args.plugin_dir], config)
    router.mport = mport
    return router


def waited(what, fn, router):
    """wait_for() as a bool: on a timeout, says so and shows the router's last lines."""
    try:
        wait_for(what, fn, WAIT)
        return True
    except AssertionError as e:
        print(str(e), file=sys.stderr)
        router.dump(40, "A: ")
        return False


def deliver(check, args, backend, tls_lines, what, count=50, spans=10, first_seq=0):
    """A sends count*spans spans through B; checks that B accepted all and A stops
    cleanly. Returns the number expected."""
    total = count * spans
    a = sender(args, backend.port, tls_lines, count, spans, first_seq)
    try:
        check(waited(what, lambda: backend.metric("switchyard_receiver_accepted_spans_total")
                     >= first_seq + total, a), f"{what}: B accepted all {total} spans")
        check(metric(a.mport, "switchyard_exporter_send_failed_spans_total") == 0,
              f"{what}: A counted no failed span")
        check(a.stop() == 0, f"{what}: A exits 0")
    finally:
        a.cleanup()
    return total


def refuse(check, args, backend, tls_lines, what):
    """A cannot deliver: its sends fail and are counted; B accepts nothing."""
    before = backend.metric("switchyard_receiver_otlp_grpc_tls_handshake_failures_total")
    accepted = backend.metric("switchyard_receiver_accepted_spans_total")
    a = sender(args, backend.port, tls_lines, 3, 10, first_seq=900000, retry=False)
    try:
        check(waited(what + ": A's failed sends",
                     lambda: metric(a.mport, "switchyard_exporter_send_failed_spans_total")
                     >= 30, a), f"{what}: A counted its 30 spans as send_failed")
        check(metric(a.mport, "switchyard_exporter_sent_spans_total") == 0,
              f"{what}: A sent nothing")
        check(backend.metric("switchyard_receiver_otlp_grpc_tls_handshake_failures_total")
              > before, f"{what}: B counted a failed handshake")
        check(backend.metric("switchyard_receiver_accepted_spans_total") == accepted,
              f"{what}: B accepted nothing")
        check(a.stop() == 0, f"{what}: A exits 0")
    finally:
        a.cleanup()


def finish_backend(check, backend, what, total):
    rc, report = backend.stop()
    check(rc == 0, f"{what}: B exits 0 (got {rc})")
    check(report.get("distinct") == total and report.get("duplicates") == 0 and
          report.get("out_of_range") == 0,
          f"{what}: testsink saw {total} distinct spans, no duplicate ({report})")


# ---- cases -------------------------------------------------------------------------------

def case_tls(check, args, pki, tmp):
    b = Backend(args, tmp, [f"cert_file: {pki['server.pem']}", f"key_file: {pki['server.key']}"])
    try:
        check("TLS" in b.router.output(), "tls: B logs that its gRPC server is on TLS")
        total = deliver(check, args, b, [f"ca_file: {pki['ca.pem']}"], "tls")
        # Messages of a few hundred KiB: many TLS records each way per call.
        total += deliver(check, args, b, [f"ca_file: {pki['ca.pem']}"], "tls, large messages",
                         count=10, spans=3000, first_seq=total)
        finish_backend(check, b, "tls", total)
    finally:
        b.router.cleanup()


def case_mtls(check, args, pki, tmp):
    b = Backend(args, tmp, [f"cert_file: {pki['server.pem']}", f"key_file: {pki['server.key']}",
                            f"client_ca_file: {pki['ca.pem']}", "min_version: \"1.2\""])
    try:
        refuse(check, args, b, [f"ca_file: {pki['ca.pem']}"], "mtls without a client cert")
        total = deliver(check, args, b, [f"ca_file: {pki['ca.pem']}",
                                         f"cert_file: {pki['client.pem']}",
                                         f"key_file: {pki['client.key']}"],
                        "mtls with a client cert")
        finish_backend(check, b, "mtls", total)
    finally:
        b.router.cleanup()


def case_skip(check, args, pki, tmp):
    b = Backend(args, tmp, [f"cert_file: {pki['other_server.pem']}",
                            f"key_file: {pki['other_server.key']}"])
    try:
        refuse(check, args, b, [f"ca_file: {pki['ca.pem']}"], "a certificate of another CA")
        total = deliver(check, args, b, [f"ca_file: {pki['ca.pem']}",
                                         "insecure_skip_verify: true"],
                        "insecure_skip_verify")
        finish_backend(check, b, "skip", total)
    finally:
        b.router.cleanup()


def raw_cleartext(port, payload):
    """Sends `payload` in clear to the TLS port; True if the server closes the
    connection (after at most an alert) within 10 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        deadline = time.monotonic() + 10
        got = b""
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                return True
            if not chunk:
                return len(got) < 64  # an alert at most, no HTTP/2 SETTINGS
            got += chunk
        return False


def case_cleartext(check, args, pki, tmp):
    # Copies of the server's files, replaced below to see reload_interval at work.
    cert, key = os.path.join(tmp, "reloaded.pem"), os.path.join(tmp, "reloaded.key")
    shutil.copy(pki["server.pem"], cert)
    shutil.copy(pki["server.key"], key)
    b = Backend(args, tmp, [f"cert_file: {cert}", f"key_file: {key}", "reload_interval: 500ms"])
    try:
        refuse(check, args, b, ["insecure: true"], "an h2c client")
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
        before = b.metric("switchyard_receiver_otlp_grpc_tls_handshake_failures_total")
        check(raw_cleartext(b.port, preface), "cleartext: a raw HTTP/2 preface is closed")
        check(raw_cleartext(b.port, b"\x16\x03\x01\x00\x05hello"),
              "cleartext: a broken ClientHello is closed")
        check(raw_cleartext(b.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
              "cleartext: HTTP/1.1 is closed")
        wait_for("the failed handshakes counted",
                 lambda: b.metric("switchyard_receiver_otlp_grpc_tls_handshake_failures_total")
                 >= before + 3, 10)
        check(True, "cleartext: B counted every failed handshake")
        failures = b.metric("switchyard_receiver_otlp_grpc_tls_handshake_failures_total")
        warns = [line for line in b.router.lines()
                 if "TLS handshake" in line and "warn" in line.lower()]
        check(len(warns) == 1, f"cleartext: one warning for {failures:.0f} failures "
              f"(rate limited; got {len(warns)})")
        total = deliver(check, args, b, [f"ca_file: {pki['ca.pem']}"],
                        "cleartext: a TLS client after the cleartext ones")
        # reload_interval: a certificate of the other CA replaces the first one.
        shutil.copy(pki["other_server.pem"], cert + ".tmp")
        shutil.copy(pki["other_server.key"], key + ".tmp")
        os.replace(cert + ".tmp", cert)
        os.replace(key + ".tmp", key)
        time.sleep(1.5)
        total += deliver(check, args, b, [f"ca_file: {pki['other_ca.pem']}"],
                         "reload: the new certificate is served", first_seq=total)
        finish_backend(check, b, "cleartext", total)
    finally:
        b.router.cleanup()


def case_config(check, args, pki, tmp):
    bad = [
        ([f"cert_file: {pki['server.pem']}", f"key_file: {tmp}/missing.key"],
         "missing.key"),
        ([f"cert_file: {pki['server.pem']}", f"key_file: {pki['other_server.key']}"],
         "does not match"),
        ([f"cert_file: {pki['server.key']}", f"key_file: {pki['server.key']}"],
         "cert_file"),
        ([f"cert_file: {pki['server.pem']}", f"key_file: {pki['server.key']}",
          "min_version: \"1.4\""], "min_version"),
        ([f"cert_file: {pki['server.pem']}"], "key_file"),
        ([f"cert_file: {pki['server.pem']}", f"key_file: {pki['server.key']}",
          f"client_ca_file: {tmp}/nope.pem"], "nope.pem"),
    ]
    for lines, want in bad:
        port = free_port()
        tls = "".join("          %s\n" % line for line in lines)
        config = f"""receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{port}
        tls:
{tls}exporters:
  debug: {{}}
service:
  telemetry:
    metrics:
      level: none
""" + pipeline("otlp", "debug")
        r = Router(args.bin, [args.plugin_dir], config, wait=False)
        try:
            try:
                rc = r.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                rc = None
            out = r.output()
            check(rc not in (None, 0) and want in out and "Sanitizer" not in out,
                  f"config: {want!r}: startup fails naming it (rc {rc})")
            if rc in (None, 0) or want not in out:
                sys.stderr.write(out[-2000:])
        finally:
            r.cleanup()


def case_js(check, args, pki, tmp):
    if not args.node_dir or not os.path.isdir(os.path.join(args.node_dir, "node_modules")):
        print("skip js: no OpenTelemetry JS SDK installed (--node-dir)")
        return
    # ES modules resolve packages from the script's own directory: a private copy
    # there, so that tests running at once do not write the same file.
    script = os.path.join(args.node_dir, "send-tls-%d.mjs" % os.getpid())
    shutil.copy(os.path.join(args.src_dir, "send.mjs"), script)
    b = Backend(args, tmp, [f"cert_file: {pki['server.pem']}", f"key_file: {pki['server.key']}"],
                signals=("traces", "metrics", "logs"))
    try:
        manifest = os.path.join(tmp, "manifest.json")
        env = dict(os.environ, OTEL_EXPORTER_OTLP_CERTIFICATE=pki["ca.pem"])
        cmd = ["node", script, "--endpoint",
               f"https://localhost:{b.port}", "--protocol", "grpc", "--prefix", "tls-js",
               "--manifest", manifest]
        print("$ " + " ".join(cmd), flush=True)
        try:
            res = subprocess.run(cmd, cwd=args.node_dir, capture_output=True, text=True,
                                 timeout=NODE_TIMEOUT, stdin=subprocess.DEVNULL, env=env)
            rc, out = res.returncode, res.stdout + res.stderr
        except subprocess.TimeoutExpired:
            rc, out = None, ""
        sys.stdout.write(out[-3000:])
        check(rc == 0, f"js: send.mjs over TLS exits 0 (got {rc})")
        # "export traces grpc: SUCCESS, 5 items": what the SDK says it delivered.
        sent = {"traces": 0, "metrics": 0, "logs": 0}
        for line in out.splitlines():
            words = line.replace(",", "").split()
            if len(words) == 6 and words[0] == "export" and words[3] == "SUCCESS":
                sent[words[1]] = sent.get(words[1], 0) + int(words[4])
        for signal, name in (("traces", "spans"), ("metrics", "metric_points"),
                             ("logs", "log_records")):
            got = b.metric(f"switchyard_receiver_accepted_{name}_total")
            check(sent[signal] > 0 and got == sent[signal],
                  f"js: B accepted the {sent[signal]} {name} the SDK exported (got {got:.0f})")
        check(b.metric("switchyard_receiver_otlp_grpc_tls_handshake_failures_total") == 0,
              "js: no failed handshake")
        rc, _ = b.stop()
        check(rc == 0, "js: B exits 0")
    finally:
        b.router.cleanup()
        os.unlink(script)


CASES = {"tls": case_tls, "mtls": case_mtls, "skip": case_skip, "cleartext": case_cleartext,
         "config": case_config, "js": case_js}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", required=True)
    ap.add_argument("--node-dir", help="where test_otel_js.py setup installed the JS SDK")
    ap.add_argument("--src-dir", default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "node"), help="tests/integration/node (send.mjs)")
    ap.add_argument("cases", nargs="*", help="cases to run (default: all)")
    args = ap.parse_args()
    if args.node_dir:
        args.node_dir = os.path.abspath(args.node_dir)
    if not shutil.which("openssl"):
        print("FAIL: the openssl command is needed to make the test certificates")
        return 1
    check = Checks()
    tmp = tempfile.mkdtemp(prefix="sy-tls-")
    try:
        pki = make_pki(tmp)
        for name in args.cases or list(CASES):
            print(f"--- {name}", flush=True)
            try:
                CASES[name](check, args, pki, tmp)
            except AssertionError as e:
                check(False, f"{name}: {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
