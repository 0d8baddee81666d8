#!/usr/bin/env python3
"""TLS on the servers that had none (issue 11 item 1): the router's own /metrics
endpoint (service.telemetry.metrics.tls, with `address` and with
`readers[].pull.exporter.prometheus`) and the zpages extension (`tls`).

Certificates are made by the openssl CLI in a temporary directory. For each
server: Python's ssl client (a real TLS 1.2/1.3 client verifying the chain and
the name) gets the page; a plain-text request to the port gets no HTTP answer;
with client_ca_file, a client without a certificate is refused and one with a
certificate the CA signed is served. Bad settings: a cert_file that does not
exist is a configuration error at `file:line:col` (switchyard validate and
startup), a cert_file that is not PEM fails startup naming the file and the
block's position; a min_version that does not exist is a configuration error.

    test_tls_servers.py --bin B --plugin-dir D {metrics,zpages,config}
"""
import argparse
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Router, free_port  # noqa: E402


def expect(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok   " + what, flush=True)


def openssl(*args, cwd):
    if not shutil.which("openssl"):
        raise AssertionError("the openssl CLI is missing (deploy/debian-deps.sh --test)")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d):
    """ca.pem/ca.key, server srv.pem/srv.key (localhost, 127.0.0.1), client cli.pem/cli.key."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=switchyard-test-ca", cwd=d)
    with open(os.path.join(d, "ext"), "w") as fh:
        fh.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("srv", "cli"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={'localhost' if name == 'srv' else 'client'}",
                cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "ext", cwd=d)


def https_get(port, path, d, client_cert=False, timeout=5.0):
    """GET over TLS verifying the chain and the name; returns (status, body)."""
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    if client_cert:
        ctx.load_cert_chain(os.path.join(d, "cli.pem"), os.path.join(d, "cli.key"))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                      .encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def plain_answer(port, path, timeout=3.0):
    """A cleartext request: returns what came back (b"" when nothing did)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        try:
            while len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return data


def tls_block(d, indent, client_ca=False, extra=""):
    pad = " " * indent
    out = (f"{pad}tls:\n{pad}  cert_file: {d}/srv.pem\n{pad}  key_file: {d}/srv.key\n"
           f"{pad}  min_version: \"1.2\"\n{pad}  reload_interval: 1h\n")
    if client_ca:
        out += f"{pad}  client_ca_file: {d}/ca.pem\n"
    return out + extra


def base(metrics_yaml, extensions="", ext_list=""):
    return f"""{extensions}receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{free_port()}
exporters:
  nop:
service:
{ext_list}  telemetry:
    metrics:
{metrics_yaml}  pipelines:
    traces:
      receivers: [otlp]
      exporters: [nop]
"""


def check_server(args, d, port, path, cfg, want, what):
    with Router(args.bin, [args.plugin_dir], cfg) as r:
        status, body = https_get(port, path, d)
        expect(status == 200 and want in body, f"{what}: GET {path} over TLS answers 200 with "
                                                f"the page")
        expect(b"https://" in r.output_bytes(), f"{what}: the log says https")
        got = plain_answer(port, path)
        expect(not got.startswith(b"HTTP/"), f"{what}: a plain-text request gets no HTTP "
                                              f"answer ({got[:20]!r})")


def case_metrics(args, d):
    port = free_port()
    cfg = base(f"      address: 127.0.0.1:{port}\n" + tls_block(d, 6))
    check_server(args, d, port, "/metrics", cfg, b"switchyard_process_uptime_seconds",
                 "metrics (address)")
    port = free_port()
    readers = (f"      readers:\n        - pull:\n            exporter:\n              prometheus:\n"
               f"                host: 127.0.0.1\n                port: {port}\n")
    check_server(args, d, port, "/metrics", base(readers + tls_block(d, 6)),
                 b"switchyard_process_uptime_seconds", "metrics (readers)")
    # Mutual TLS.
    port = free_port()
    cfg = base(f"      address: 127.0.0.1:{port}\n" + tls_block(d, 6, client_ca=True))
    with Router(args.bin, [args.plugin_dir], cfg):
        refused = False
        try:
            https_get(port, "/metrics", d)
        except (ssl.SSLError, OSError):
            refused = True
        expect(refused, "client_ca_file: a client without a certificate is refused")
        status, _ = https_get(port, "/metrics", d, client_cert=True)
        expect(status == 200, "client_ca_file: a client with a certificate the CA signed is "
                              "served")


def case_zpages(args, d):
    port = free_port()
    ext = f"extensions:\n  zpages:\n    endpoint: 127.0.0.1:{port}\n" + tls_block(d, 4)
    cfg = base(f"      address: 127.0.0.1:{free_port()}\n", ext, "  extensions: [zpages]\n")
    check_server(args, d, port, "/debug/servicez", cfg, b"<", "zpages")


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def case_config(args, d):
    port = free_port()
    good = base(f"      address: 127.0.0.1:{port}\n" + tls_block(d, 6))
    missing = good.replace(f"{d}/srv.pem", f"{d}/nope.pem")
    path = os.path.join(d, "missing.yaml")
    with open(path, "w") as fh:
        fh.write(missing)
    line = line_of(missing, "nope.pem")
    for argv in (["validate", "--config", path], ["--config", path]):
        p = subprocess.run([args.bin, *argv, "--plugin-dir", args.plugin_dir],
                           capture_output=True, text=True, timeout=30)
        out = p.stdout + p.stderr
        expect(p.returncode != 0 and re.search(
            rf"missing\.yaml:{line}:\d+: 'service\.telemetry\.metrics\.tls\.cert_file': "
            r"cannot read \".*nope\.pem\": No such file", out),
            f"switchyard {argv[0]}: a missing cert_file is an error at missing.yaml:{line}")
    with open(os.path.join(d, "junk.pem"), "w") as fh:
        fh.write("not a certificate\n")
    junk = good.replace(f"{d}/srv.pem", f"{d}/junk.pem")
    path = os.path.join(d, "junk.yaml")
    with open(path, "w") as fh:
        fh.write(junk)
    tls_line = line_of(junk, "tls:")
    p = subprocess.run([args.bin, "--config", path, "--plugin-dir", args.plugin_dir],
                       capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    expect(p.returncode != 0 and re.search(
        rf"junk\.yaml:{tls_line + 1}:\d+: service\.telemetry\.metrics\.tls: .*junk\.pem", out),
        f"a cert_file that is not PEM fails startup at junk.yaml:{tls_line + 1}, naming the file")
    bad = good.replace('min_version: "1.2"', 'min_version: "1.9"')
    path = os.path.join(d, "version.yaml")
    with open(path, "w") as fh:
        fh.write(bad)
    p = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                        args.plugin_dir], capture_output=True, text=True, timeout=30)
    expect(p.returncode != 0 and "version.yaml:" in p.stdout + p.stderr and
           "1.9" in p.stdout + p.stderr, "min_version 1.9 is a configuration error")
    zp = base(f"      address: 127.0.0.1:{port}\n",
              f"extensions:\n  zpages:\n    endpoint: 127.0.0.1:{free_port()}\n"
              f"    tls:\n      key_file: {d}/srv.key\n", "  extensions: [zpages]\n")
    path = os.path.join(d, "zp.yaml")
    with open(path, "w") as fh:
        fh.write(zp)
    p = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                        args.plugin_dir], capture_output=True, text=True, timeout=30)
    expect(p.returncode != 0 and re.search(r"zp\.yaml:\d+:\d+: .*cert_file", p.stdout + p.stderr),
           "zpages: tls without cert_file is a configuration error at its line")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("case", choices=["metrics", "zpages", "config"])
    args = ap.parse_args()
    t0 = time.monotonic()
    d = tempfile.mkdtemp(prefix="sy-tls-")
    try:
        make_certs(d)
        {"metrics": case_metrics, "zpages": case_zpages, "config": case_config}[args.case](
            args, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"tls_servers.{args.case} passed in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
