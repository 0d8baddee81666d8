#!/usr/bin/env python3
"""tls.reload_interval that takes effect (issue 11 item 2).

client  otlp receiver -> otlphttp exporter (https, tls.ca_file, reload_interval 4s)
        -> an HTTPS sink (tests/integration/sinks/http_sink.py) presenting a
        certificate of CA A. A span is delivered (the exporter has read CA A).
        Then the sink restarts on the same port with a certificate of CA B and the
        exporter's ca_file is replaced by CA B: for the rest of reload_interval the
        exporter still trusts only CA A (its sends fail verification and are
        retried, nothing arrives); once reload_interval has passed since it read
        the file it reads it again and delivers. Checks the timing both ways.
server  the router's own /metrics over TLS with reload_interval 1s: its certificate
        files are replaced by ones of CA B; new connections are served with the new
        certificate within ~1 s (a client trusting only CA B verifies it; one
        trusting only CA A no longer does), without a restart.

Certificates are made by the openssl CLI; every wait is bounded.

    test_tls_reload.py --bin B --plugin-dir D {client,server}
"""
import argparse
import os
import shutil
import socket
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "sinks"))
from harness import Router, free_port, http, wait_for  # noqa: E402
from http_sink import Sink  # noqa: E402
from test_persistent_queue import sample, scrape  # noqa: E402
from test_tls_servers import expect, openssl  # noqa: E402

RELOAD_S = 4.0


def make_pki(d):
    with open(os.path.join(d, "ext"), "w") as fh:
        fh.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for ca in ("a", "b"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"ca_{ca}.key",
                "-out", f"ca_{ca}.pem", "-days", "2", "-subj", f"/CN=test-ca-{ca}", cwd=d)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"srv_{ca}.key", "-out",
                f"srv_{ca}.csr", "-subj", "/CN=localhost", cwd=d)
        openssl("x509", "-req", "-in", f"srv_{ca}.csr", "-CA", f"ca_{ca}.pem", "-CAkey",
                f"ca_{ca}.key", "-CAcreateserial", "-out", f"srv_{ca}.pem", "-days", "2",
                "-extfile", "ext", cwd=d)


def replace(src, dst):
    shutil.copyfile(src, dst + ".new")
    os.replace(dst + ".new", dst)


def tls_sink(d, ca, port=0):
    s = Sink(port=port)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, f"srv_{ca}.pem"), os.path.join(d, f"srv_{ca}.key"))
    s.server.socket = ctx.wrap_socket(s.server.socket, server_side=True)
    return s


def post(port, name):
    body = ('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":'
            '"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"%s",'
            '"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}' % name).encode()
    st, _, _ = http("POST", f"http://127.0.0.1:{port}/v1/traces", body,
                    {"Content-Type": "application/json"}, timeout=5.0)
    return st


def names(sink):
    return [r["body"].decode("utf-8", "replace") for r in sink.received()]


def case_client(args, d):
    trust = os.path.join(d, "trust.pem")
    replace(os.path.join(d, "ca_a.pem"), trust)
    sink = tls_sink(d, "a")
    hport, mport = free_port(), free_port()
    cfg = f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{hport}
exporters:
  otlphttp:
    endpoint: https://localhost:{sink.port}
    encoding: json
    compression: none
    timeout: 2s
    tls:
      ca_file: {trust}
      reload_interval: {RELOAD_S:.0f}s
    retry_on_failure:
      initial_interval: 200ms
      max_interval: 300ms
      max_elapsed_time: 0s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"""
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            expect(post(hport, "span-a") == 200, "the receiver takes span-a")
            wait_for("span-a at the sink", lambda: any("span-a" in n for n in names(sink)), 10)
            t_read = time.monotonic()  # about when the exporter read ca_file (CA A)
            expect(True, "span-a delivered to the backend of CA A")
            # Rotation: the backend now presents a certificate of CA B, ca_file says B.
            sink.stop()
            sink = tls_sink(d, "b", port=sink.port)
            replace(os.path.join(d, "ca_b.pem"), trust)
            retries0 = sample(scrape(mport), "switchyard_exporter_retries_total") or 0
            expect(post(hport, "span-b") == 200, "the receiver takes span-b")
            # Before reload_interval: still CA A, verification fails, retried.
            wait_for("a failed, retried attempt",
                     lambda: (sample(scrape(mport), "switchyard_exporter_retries_total") or 0)
                     > retries0, 5)
            before = time.monotonic() - t_read
            expect(before < RELOAD_S - 1 and not any("span-b" in n for n in names(sink)),
                   f"{before:.1f} s after ca_file was read (< {RELOAD_S:.0f} s): span-b is not "
                   f"delivered, the attempt failed verification and is retried")
            try:
                wait_for("span-b at the sink", lambda: any("span-b" in n for n in names(sink)),
                         RELOAD_S + 10)
            except AssertionError:
                print(r.output()[-3000:])  # why the exporter could not deliver
                raise
            after = time.monotonic() - t_read
            got = sink.received()[0]["at"] - t_read if sink.received() else -1
            print(f"tls_reload.client: reload_interval={RELOAD_S:.0f}s span-b delivered "
                  f"{got:.1f} s after ca_file was first read", flush=True)
            expect(got >= RELOAD_S - 0.5,
                   f"span-b is delivered only once reload_interval has passed ({got:.1f} s)")
            expect(after < RELOAD_S + 10, "and then without a restart")
            expect(r.stop() == 0, "the router exits 0")
    finally:
        sink.stop()


def verify(port, d, ca):
    """True when a TLS client trusting only CA `ca` completes a handshake."""
    ctx = ssl.create_default_context(cafile=os.path.join(d, f"ca_{ca}.pem"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost"):
                return True
    except (ssl.SSLError, OSError):
        return False


def case_server(args, d):
    cert, key = os.path.join(d, "m.pem"), os.path.join(d, "m.key")
    replace(os.path.join(d, "srv_a.pem"), cert)
    replace(os.path.join(d, "srv_a.key"), key)
    mport = free_port()
    cfg = f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{free_port()}
exporters:
  nop:
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
      tls:
        cert_file: {cert}
        key_file: {key}
        reload_interval: 1s
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [nop]
"""
    with Router(args.bin, [args.plugin_dir], cfg) as r:
        expect(verify(mport, d, "a") and not verify(mport, d, "b"),
               "/metrics presents the certificate of CA A")
        replace(os.path.join(d, "srv_b.key"), key)
        replace(os.path.join(d, "srv_b.pem"), cert)
        t0 = time.monotonic()
        wait_for("the new certificate", lambda: verify(mport, d, "b"), 5)
        print(f"tls_reload.server: new certificate served {time.monotonic() - t0:.1f} s after "
              f"the files were replaced (reload_interval 1s)", flush=True)
        expect(not verify(mport, d, "a"), "new connections get the certificate of CA B, "
                                          "without a restart")
        expect(r.stop() == 0, "the router exits 0")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("case", choices=["client", "server"])
    args = ap.parse_args()
    t0 = time.monotonic()
    d = tempfile.mkdtemp(prefix="sy-tlsr-")
    try:
        make_pki(d)
        {"client": case_client, "server": case_server}[args.case](args, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"tls_reload.{args.case} passed in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
