#!/usr/bin/env python3
"""Authentication and TLS beyond the otlp receiver (issue 11 item 3), through the real
binary, with throwaway certificates made by the openssl CLI:

  test_tls_auth.py CASE --bin BIN --plugin-dir DIR

Cases:
  receivers  bearertokenauth on the zipkin receiver and on the jaeger receiver's
             thrift_http and grpc: the right token is delivered, a wrong or missing
             one gets 401 ("Unauthorized", WWW-Authenticate: Bearer, nothing of what
             was sent) or UNAUTHENTICATED, before the body is looked at; each
             receiver counts its refusals.
  lb         the loadbalancing exporter's protocol.otlp.auth: spans cross to an otlp
             receiver that requires the token; a loadbalancing exporter with the
             wrong token is refused (counted on both sides) and delivers nothing.
  ciphers    tls.cipher_suites: the otlp receiver's gRPC TLS server accepts only the
             suite it lists (python's ssl client: the listed suite handshakes, another
             is refused) and the otlphttp exporter offers only its own (a TLS 1.2 sink
             records the suite of each request; a suite the sink does not take fails
             the send); unknown names are refused by validate with the file:line.
  reload     a client's ca_file replaced while the router runs: the exporter's ca_file
             starts with the wrong CA (sends fail and are retried), is replaced with
             the right one, and the next connection trusts it: with reload_interval
             1s and without it (libcurl 7.88 reads ca_file for every new connection;
             reload_interval bounds the CA cache of builds that keep one).
  scrape_tls the prometheus receiver scraping an https target with tls_config:
             ca_file and insecure_skip_verify scrape (up 1, the sample), a CA that
             did not sign the target or min_version TLS13 against a TLS 1.2
             target fail (up 0); bad versions and unsupported keys fail validate.
  servers    TLS on every HTTP server: the otlp receiver's HTTP protocol (its
             certificate replaced and served after reload_interval), zipkin (one
             cipher suite: another is refused), jaeger thrift_http (with auth) and
             grpc (a TLS handshake with ALPN h2),
             health_check (mutual TLS: a client without a certificate is refused),
             the prometheus exporter's endpoint (min_version 1.3: a TLS 1.2 client is
             refused); a cleartext request to any of them gets no answer.
  defaults   every server's default endpoint (otlp grpc and http, jaeger's four
             protocols, zipkin, health_check, the router's own metrics) binds
             127.0.0.1 only, as the collector since 0.104: read from /proc/net inside
             a network namespace of its own (unshare -n) when one can be made.

Every wait is bounded; python3 standard library only.
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Router, free_port, http, json_span, json_traces, wait_for  # noqa: E402
from test_auth import (AuthChecks, Sink, metric, metrics_text, post, probe_body,  # noqa: E402
                       raw_head)
from test_otlp_tls import make_pki  # noqa: E402

WAIT = 15.0


def need_openssl():
    if not shutil.which("openssl"):
        raise SystemExit("FAIL: the openssl command is needed to make the test certificates")


def validate(args, text, tmp):
    path = os.path.join(tmp, "validate.yaml")
    with open(path, "w") as f:
        f.write(text)
    out = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                          args.plugin_dir], capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout + out.stderr


# ---------------------------------------------------------------------------
# receivers
# ---------------------------------------------------------------------------

def thrift_batch(service, name, trace_low):
    """A Jaeger Thrift binary-protocol Batch with one span (every required field)."""
    def field(t, fid):
        return struct.pack(">bh", t, fid)

    def string(v):
        return struct.pack(">i", len(v)) + v

    span = (field(10, 1) + struct.pack(">q", trace_low) + field(10, 2) + struct.pack(">q", 0) +
            field(10, 3) + struct.pack(">q", 7) + field(10, 4) + struct.pack(">q", 0) +
            field(11, 5) + string(name.encode()) + field(8, 7) + struct.pack(">i", 1) +
            field(10, 8) + struct.pack(">q", int(time.time() * 1e6)) +
            field(10, 9) + struct.pack(">q", 1000) + b"\x00")
    process = field(11, 1) + string(service.encode()) + b"\x00"
    return (field(12, 1) + process + field(15, 2) + struct.pack(">bi", 12, 1) + span + b"\x00")


def zipkin_body(name):
    return json.dumps([{"traceId": "5af7183fb1d4cf5f5af7183fb1d4cf5f", "id": "352bff9a74ca9ad2",
                        "name": name, "timestamp": int(time.time() * 1e6), "duration": 10,
                        "localEndpoint": {"serviceName": "zk-auth"}}]).encode()


RECEIVERS_CONFIG = """
extensions:
  bearertokenauth/in:
    token: right-token
  bearertokenauth/good:
    token: right-token
  bearertokenauth/bad:
    token: wrong-token
receivers:
  zipkin:
    endpoint: 127.0.0.1:{zport}
    auth:
      authenticator: bearertokenauth/in
  jaeger:
    protocols:
      thrift_http:
        endpoint: 127.0.0.1:{jport}
        auth:
          authenticator: bearertokenauth/in
      grpc:
        endpoint: 127.0.0.1:{gport}
        auth:
          authenticator: bearertokenauth/in
  otlp/front:
    protocols:
      http:
        endpoint: 127.0.0.1:{fport}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sport}
    encoding: json
    compression: none
  otlp/good:
    endpoint: 127.0.0.1:{gport}
    tls:
      insecure: true
    retry_on_failure:
      enabled: false
    auth:
      authenticator: bearertokenauth/good
  otlp/bad:
    endpoint: 127.0.0.1:{gport}
    tls:
      insecure: true
    retry_on_failure:
      enabled: false
    auth:
      authenticator: bearertokenauth/bad
service:
  extensions: [bearertokenauth/in, bearertokenauth/good, bearertokenauth/bad]
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [zipkin, jaeger]
      exporters: [otlphttp]
    traces/front:
      receivers: [otlp/front]
      exporters: [otlp/good, otlp/bad]
"""


def check_401(c, what, st, hdrs, body, secret):
    lower = {k.lower(): v for k, v in hdrs.items()}
    c.check(st == 401, "%s: 401 (%s)" % (what, st))
    c.check(body == b"Unauthorized\n", "%s: the body is only 'Unauthorized' (%r)" % (what, body))
    c.check(lower.get("www-authenticate") == "Bearer",
            "%s: WWW-Authenticate: Bearer (%r)" % (what, lower.get("www-authenticate")))
    c.check(secret.encode() not in body and all(secret not in v for v in lower.values()),
            "%s: nothing of the credential sent comes back" % what)


def case_receivers(args, c):
    sink = Sink()
    zport, jport, gport, fport, mport = (free_port() for _ in range(5))
    cfg = RECEIVERS_CONFIG.format(zport=zport, jport=jport, gport=gport, fport=fport,
                                  sport=sink.port, mport=mport)
    zurl = "http://127.0.0.1:%d/api/v2/spans" % zport
    jurl = "http://127.0.0.1:%d/api/traces" % jport
    thrift = {"Content-Type": "application/x-thrift"}
    zjson = {"Content-Type": "application/json"}
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            # The right token: delivered.
            st, _, _ = http("POST", zurl, zipkin_body("zk-ok"),
                            dict(zjson, Authorization="Bearer right-token"))
            c.check(st == 202, "zipkin with the right token: 202 (%d)" % st)
            st, _, _ = http("POST", jurl, thrift_batch("jg-auth", "jg-ok", 11),
                            dict(thrift, Authorization="Bearer right-token"))
            c.check(st == 202, "thrift_http with the right token: 202 (%d)" % st)
            try:
                wait_for("both spans at the sink",
                         lambda: {"zk-ok", "jg-ok"} <= set(sink.span_names()), WAIT)
                c.check(True, "zipkin and thrift_http spans with the right token delivered")
            except AssertionError as e:
                c.check(False, "%s (sink has %s)" % (e, sink.span_names()))
            # Wrong and missing tokens: 401, nothing delivered.
            for what, url, body, base in (("zipkin", zurl, zipkin_body("zk-bad"), zjson),
                                          ("thrift_http", jurl,
                                           thrift_batch("jg-auth", "jg-bad", 12), thrift)):
                st, hdrs, rbody = http("POST", url, body,
                                       dict(base, Authorization="Bearer wrong-secret-xyz"))
                check_401(c, what + " wrong token", st, hdrs, rbody, "wrong-secret-xyz")
                st, hdrs, rbody = http("POST", url, body, base)
                check_401(c, what + " no token", st, hdrs, rbody, "wrong-secret-xyz")
            # Refused before the body: a head announcing a large body gets 401 at once.
            port_of = {"zipkin": (zport, "/api/v2/spans"), "thrift_http": (jport, "/api/traces")}
            for what, (port, path) in port_of.items():
                out = raw_head(port, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: "
                               "application/json\r\nContent-Length: 1000000\r\n"
                               "Authorization: Bearer nope\r\n\r\n" % path)
                c.check(out.startswith("HTTP/1.1 401"),
                        "%s: 401 before the body is sent (%r)" % (what, out[:40]))
            # gRPC: the otlp exporters call the jaeger grpc port; the wrong token is
            # refused UNAUTHENTICATED, the right one gets past authentication (to
            # UNIMPLEMENTED: the jaeger port serves PostSpans only).
            for i in range(3):
                st, _, _ = post(fport, "grpc-%d" % i)
                c.check(st == 200, "front receiver takes grpc-%d (%d)" % (i, st))

            def counted():
                t = metrics_text(mport)
                return (metric(t, "exporter_send_failed_spans_total",
                               'exporter="otlp/bad"') == 3 and
                        metric(t, "exporter_send_failed_spans_total",
                               'exporter="otlp/good"') == 3)

            try:
                wait_for("both grpc exporters to finish", counted, WAIT)
            except AssertionError as e:
                c.check(False, str(e))
            text = metrics_text(mport)
            c.check(metric(text, "receiver_jaeger_grpc_auth_failures_total") == 3,
                    "jaeger grpc refused the 3 wrong-token calls (%s)" %
                    metric(text, "receiver_jaeger_grpc_auth_failures_total"))
            c.check(metric(text, "receiver_jaeger_grpc_calls_total") == 6,
                    "jaeger grpc answered the 6 calls (%s)" %
                    metric(text, "receiver_jaeger_grpc_calls_total"))
            c.check(metric(text, "receiver_zipkin_auth_failures_total") == 3,
                    "zipkin counted 3 refusals (%s)" %
                    metric(text, "receiver_zipkin_auth_failures_total"))
            c.check(metric(text, "receiver_jaeger_thrift_http_auth_failures_total") == 3,
                    "thrift_http counted 3 refusals (%s)" %
                    metric(text, "receiver_jaeger_thrift_http_auth_failures_total"))
            out = r.output()
            c.check("did not authenticate" in out and "wrong-secret-xyz" not in out,
                    "the refusals are logged, the credential is not")
            time.sleep(0.3)
            c.check(not {"zk-bad", "jg-bad"} & set(sink.span_names()),
                    "nothing sent with a wrong or missing token was delivered")
            c.check(r.stop() == 0, "router exits 0")
            if c.failures:
                r.dump(60, "router: ")
    finally:
        sink.stop()


# ---------------------------------------------------------------------------
# lb
# ---------------------------------------------------------------------------

LB_CONFIG = """
extensions:
  bearertokenauth/server:
    token: lb-token
  bearertokenauth/client:
    token: lb-token
  bearertokenauth/wrong:
    token: not-the-token
receivers:
  otlp/front:
    protocols:
      http:
        endpoint: 127.0.0.1:{fport}
  otlp/wrongfront:
    protocols:
      http:
        endpoint: 127.0.0.1:{wport}
  otlp/back:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{gport}
        auth:
          authenticator: bearertokenauth/server
exporters:
  loadbalancing:
    resolver:
      static:
        hostnames: [127.0.0.1:{gport}]
    protocol:
      otlp:
        tls:
          insecure: true
        auth:
          authenticator: bearertokenauth/client
  loadbalancing/wrong:
    resolver:
      static:
        hostnames: [127.0.0.1:{gport}]
    protocol:
      otlp:
        tls:
          insecure: true
        retry_on_failure:
          enabled: false
        auth:
          authenticator: bearertokenauth/wrong
  otlphttp:
    endpoint: http://127.0.0.1:{sport}
    encoding: json
    compression: none
service:
  extensions: [bearertokenauth/server, bearertokenauth/client, bearertokenauth/wrong]
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces/front:
      receivers: [otlp/front]
      exporters: [loadbalancing]
    traces/wrong:
      receivers: [otlp/wrongfront]
      exporters: [loadbalancing/wrong]
    traces/back:
      receivers: [otlp/back]
      exporters: [otlphttp]
"""


def case_lb(args, c):
    sink = Sink()
    fport, wport, gport, mport = (free_port() for _ in range(4))
    cfg = LB_CONFIG.format(fport=fport, wport=wport, gport=gport, sport=sink.port, mport=mport)
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            names = ["lb-%d" % i for i in range(4)]
            for n in names:
                st, _, _ = post(fport, n)
                c.check(st == 200, "front takes %s (%d)" % (n, st))
            try:
                wait_for("spans through the load balancer",
                         lambda: set(names) <= set(sink.span_names()), WAIT)
                c.check(True, "loadbalancing with protocol.otlp.auth delivers every span")
            except AssertionError as e:
                c.check(False, "%s (sink has %s)" % (e, sink.span_names()))
            for i in range(2):
                st, _, _ = post(wport, "lbwrong-%d" % i)
                c.check(st == 200, "wrong front takes lbwrong-%d (%d)" % (i, st))

            def refused():
                t = metrics_text(mport)
                return metric(t, "receiver_otlp_grpc_auth_failures_total",
                              'receiver="otlp/back"') == 2

            try:
                wait_for("2 refused calls", refused, WAIT)
                c.check(True, "the wrong token's 2 calls were refused UNAUTHENTICATED")
            except AssertionError as e:
                c.check(False, "%s:\n%s" % (e, metrics_text(mport)))
            time.sleep(0.3)
            c.check(not [n for n in sink.span_names() if n.startswith("lbwrong")],
                    "nothing the wrong token sent was delivered")
            c.check(r.stop() == 0, "router exits 0")
            if c.failures:
                r.dump(60, "router: ")
    finally:
        sink.stop()


# ---------------------------------------------------------------------------
# ciphers
# ---------------------------------------------------------------------------

CIPHERS_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{hport}
      grpc:
        endpoint: 127.0.0.1:{gport}
        tls:
          cert_file: {cert}
          key_file: {key}
          max_version: "1.2"
          cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
exporters:
  otlphttp/c128:
    traces_endpoint: https://127.0.0.1:{sport}/c128
    encoding: json
    compression: none
    tls:
      ca_file: {ca}
      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
  otlphttp/c256:
    traces_endpoint: https://127.0.0.1:{sport}/c256
    encoding: json
    compression: none
    tls:
      ca_file: {ca}
      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256]
  otlphttp/chacha:
    traces_endpoint: https://127.0.0.1:{sport}/chacha
    encoding: json
    compression: none
    retry_on_failure:
      enabled: false
    tls:
      ca_file: {ca}
      cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp/c128, otlphttp/c256, otlphttp/chacha]
"""


def handshake(port, ca, ciphers):
    """A TLS 1.2 handshake offering only `ciphers` (OpenSSL names) and ALPN h2:
    the suite agreed on, or the error."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                return t.cipher()[0]
    except (ssl.SSLError, OSError) as e:
        return "error: %s" % e


def case_ciphers(args, c):
    need_openssl()
    tmp = tempfile.mkdtemp(prefix="sy-ciphers-")
    pki = make_pki(tmp)
    sink = Sink()
    # The sink: TLS 1.2 only, AES-GCM suites only; records each request's suite.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server.pem"], pki["server.key"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
    sink.server.socket = ctx.wrap_socket(sink.server.socket, server_side=True)
    suites = {}
    handler = sink.server.RequestHandlerClass
    orig = handler.do_POST

    def do_post(self):
        suites.setdefault(self.path, set()).add(self.connection.cipher()[0])
        orig(self)

    handler.do_POST = do_post
    hport, gport, mport = free_port(), free_port(), free_port()
    cfg = CIPHERS_CONFIG.format(hport=hport, gport=gport, sport=sink.port, mport=mport,
                                cert=pki["server.pem"], key=pki["server.key"], ca=pki["ca.pem"])
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            got = handshake(gport, pki["ca.pem"], "ECDHE-ECDSA-AES128-GCM-SHA256")
            c.check(got == "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "the gRPC TLS server agrees on its listed suite (%s)" % got)
            got = handshake(gport, pki["ca.pem"], "ECDHE-ECDSA-AES256-GCM-SHA384")
            c.check(got.startswith("error"),
                    "the gRPC TLS server refuses a suite it does not list (%s)" % got)
            got = handshake(gport, pki["ca.pem"],
                            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")
            c.check(got == "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "offered both, the server picks its own (%s)" % got)
            for i in range(2):
                st, _, _ = post(hport, "cs-%d" % i)
                c.check(st == 200, "receiver takes cs-%d (%d)" % (i, st))
            for path in ("/c128", "/c256"):
                try:
                    wait_for("spans at " + path,
                             lambda p=path: {"cs-0", "cs-1"} <= set(sink.span_names(p)), WAIT)
                except AssertionError as e:
                    c.check(False, str(e))
            c.check(suites.get("/c128") == {"ECDHE-ECDSA-AES128-GCM-SHA256"},
                    "otlphttp/c128 offered only AES128-GCM (%s)" % suites.get("/c128"))
            c.check(suites.get("/c256") == {"ECDHE-ECDSA-AES256-GCM-SHA384"},
                    "otlphttp/c256 offered only AES256-GCM (%s)" % suites.get("/c256"))

            def chacha_failed():
                return metric(metrics_text(mport), "exporter_send_failed_spans_total",
                              'exporter="otlphttp/chacha"') == 2

            try:
                wait_for("the chacha exporter to fail", chacha_failed, WAIT)
                c.check(True, "a suite the server does not take fails the send")
            except AssertionError as e:
                c.check(False, str(e))
            c.check(not sink.requests("/chacha"), "nothing reached the sink over chacha")
            c.check(r.stop() == 0, "router exits 0")
            if c.failures:
                r.dump(60, "router: ")
        # Unknown or insecure names: refused by validate, with the file:line of the
        # component and the collector's words.
        for old, new, what in (
                ("cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]",
                 "cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_NOPE]",
                 r'validate\.yaml:\d+:\d+: \'otlp\': protocols::grpc::tls::cipher_suites: '
                 r'invalid TLS cipher suite: "TLS_NOPE"'),
                ("cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]",
                 "cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]",
                 r'validate\.yaml:\d+:\d+: \'otlphttp/chacha\': \'tls\.cipher_suites\': '
                 r'invalid TLS cipher suite: "TLS_RSA_WITH_RC4_128_SHA"')):
            rc, out = validate(args, cfg.replace(old, new, 1), tmp)
            c.check(rc != 0 and re.search(what, out) is not None,
                    "validate refuses %s (%s)" % (new, out.strip()[-300:]))
    finally:
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# reload
# ---------------------------------------------------------------------------

RELOAD_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{hport}
exporters:
  otlphttp/reload:
    traces_endpoint: https://127.0.0.1:{sport}/reload
    encoding: json
    compression: none
    retry_on_failure:
      initial_interval: 200ms
      max_interval: 300ms
      max_elapsed_time: 60s
    tls:
      ca_file: {ca1}
      reload_interval: 1s
  otlphttp/stale:
    traces_endpoint: https://127.0.0.1:{sport}/stale
    encoding: json
    compression: none
    retry_on_failure:
      initial_interval: 200ms
      max_interval: 300ms
      max_elapsed_time: 60s
    tls:
      ca_file: {ca2}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp/reload, otlphttp/stale]
"""


def case_reload(args, c):
    need_openssl()
    tmp = tempfile.mkdtemp(prefix="sy-reload-")
    pki = make_pki(tmp)
    sink = Sink()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server.pem"], pki["server.key"])
    sink.server.socket = ctx.wrap_socket(sink.server.socket, server_side=True)
    ca1, ca2 = os.path.join(tmp, "trust1.pem"), os.path.join(tmp, "trust2.pem")
    for p in (ca1, ca2):
        shutil.copyfile(pki["other_ca.pem"], p)  # the wrong CA at first
    hport, mport = free_port(), free_port()
    cfg = RELOAD_CONFIG.format(hport=hport, sport=sink.port, ca1=ca1, ca2=ca2, mport=mport)
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            st, _, _ = post(hport, "rl-0")
            c.check(st == 200, "receiver takes rl-0 (%d)" % st)

            def both_retrying():
                t = metrics_text(mport)
                return all((metric(t, "exporter_retries_total",
                                   'exporter="otlphttp/%s"' % e) or 0) >= 1
                           for e in ("reload", "stale"))

            try:
                wait_for("both exporters to fail verification", both_retrying, WAIT)
                c.check(True, "with the wrong CA both exporters fail and retry")
            except AssertionError as e:
                c.check(False, "%s:\n%s" % (e, metrics_text(mport)))
            c.check(not sink.requests(), "nothing delivered while the CA is wrong")
            for p in (ca1, ca2):  # the right CA, replaced in place
                shutil.copyfile(pki["ca.pem"], p + ".new")
                os.replace(p + ".new", p)
            for path in ("/reload", "/stale"):
                try:
                    wait_for("delivery at %s after the CA was replaced" % path,
                             lambda p=path: "rl-0" in sink.span_names(p), WAIT)
                    c.check(True, "%s: the replaced ca_file is read, rl-0 delivered once "
                            "retried" % path)
                except AssertionError as e:
                    c.check(False, str(e))
            c.check(r.stop() == 0, "router exits 0")
            if c.failures:
                r.dump(60, "router: ")
    finally:
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# scrape_tls
# ---------------------------------------------------------------------------

SCRAPE_CONFIG = """
receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: good
          scrape_interval: 500ms
          scheme: https
          tls_config:
            ca_file: {ca}
            min_version: TLS12
          static_configs:
            - targets: ["127.0.0.1:{tport}"]
        - job_name: skip
          scrape_interval: 500ms
          scheme: https
          tls_config:
            insecure_skip_verify: true
          static_configs:
            - targets: ["127.0.0.1:{tport}"]
        - job_name: wrongca
          scrape_interval: 500ms
          scheme: https
          tls_config:
            ca_file: {other_ca}
          static_configs:
            - targets: ["127.0.0.1:{tport}"]
        - job_name: toonew
          scrape_interval: 500ms
          scheme: https
          tls_config:
            ca_file: {ca}
            min_version: TLS13
          static_configs:
            - targets: ["127.0.0.1:{tport}"]
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sport}
    encoding: json
    compression: none
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [otlphttp]
"""


def scraped(sink):
    """job (service.name) -> {metric name: last gauge value} from the sink."""
    out = {}
    for _, _, body in sink.requests("/v1/metrics"):
        for rm in json.loads(body).get("resourceMetrics", []):
            attrs = {a["key"]: a["value"].get("stringValue")
                     for a in rm.get("resource", {}).get("attributes", [])}
            job = attrs.get("service.name")
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    pts = m.get("gauge", m.get("sum", {})).get("dataPoints", [])
                    for p in pts:
                        v = p.get("asDouble", p.get("asInt"))
                        out.setdefault(job, {})[m["name"]] = float(v)
    return out


def case_scrape_tls(args, c):
    from http.server import BaseHTTPRequestHandler
    from harness import SinkHTTPServer
    import threading
    need_openssl()
    tmp = tempfile.mkdtemp(prefix="sy-scrape-")
    pki = make_pki(tmp)

    class Target(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            body = b"# TYPE tls_probe gauge\ntls_probe 42\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    target = SinkHTTPServer(("127.0.0.1", 0), Target)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server.pem"], pki["server.key"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    target.socket = ctx.wrap_socket(target.socket, server_side=True)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    sink = Sink()
    mport = free_port()
    cfg = SCRAPE_CONFIG.format(ca=pki["ca.pem"], other_ca=pki["other_ca.pem"],
                               tport=target.server_address[1], sport=sink.port, mport=mport)
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            def all_jobs():
                got = scraped(sink)
                return all(j in got and "up" in got[j] for j in
                           ("good", "skip", "wrongca", "toonew")) and \
                    "tls_probe" in got.get("good", {}) and "tls_probe" in got.get("skip", {})

            try:
                wait_for("every job scraped at least once", all_jobs, WAIT)
            except AssertionError as e:
                c.check(False, "%s (%s)" % (e, scraped(sink)))
            got = scraped(sink)
            for job in ("good", "skip"):
                c.check(got.get(job, {}).get("tls_probe") == 42.0 and
                        got.get(job, {}).get("up") == 1.0,
                        "job %s scrapes over https: tls_probe 42, up 1 (%s)" % (job, got.get(job)))
            for job, why in (("wrongca", "a CA that did not sign the target"),
                             ("toonew", "min_version TLS13 against a TLS 1.2 target")):
                c.check(got.get(job, {}).get("up") == 0.0 and
                        "tls_probe" not in got.get(job, {}),
                        "job %s: %s fails the scrape: up 0, no sample (%s)" %
                        (job, why, got.get(job)))
            c.check(r.stop() == 0, "router exits 0")
            if c.failures:
                r.dump(40, "router: ")
        bad = cfg.replace("min_version: TLS12", "min_version: TLS14")
        rc, out = validate(args, bad, tmp)
        c.check(rc != 0 and re.search(r"validate\.yaml:\d+:\d+: .*tls_config: unknown "
                                      r"min_version \"TLS14\"", out) is not None,
                "validate refuses min_version TLS14 with its line (%s)" % out.strip()[-200:])
        bad = cfg.replace("insecure_skip_verify: true", "ca: inline-pem")
        rc, out = validate(args, bad, tmp)
        c.check(rc != 0 and "tls_config key 'ca' is unknown or not supported" in out,
                "validate refuses an unsupported tls_config key (%s)" % out.strip()[-200:])
    finally:
        sink.stop()
        target.shutdown()
        target.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------

SERVERS_CONFIG = """
extensions:
  health_check:
    endpoint: 127.0.0.1:{hcport}
    tls:
      cert_file: {cert}
      key_file: {key}
      client_ca_file: {ca}
  bearertokenauth/in:
    token: tls-token
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{oport}
        tls:
          cert_file: {rcert}
          key_file: {rkey}
          reload_interval: 500ms
  zipkin:
    endpoint: 127.0.0.1:{zport}
    tls:
      cert_file: {cert}
      key_file: {key}
      max_version: "1.2"
      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
  jaeger:
    protocols:
      thrift_http:
        endpoint: 127.0.0.1:{jport}
        tls:
          cert_file: {cert}
          key_file: {key}
        auth:
          authenticator: bearertokenauth/in
      grpc:
        endpoint: 127.0.0.1:{jgport}
        tls:
          cert_file: {cert}
          key_file: {key}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sport}
    encoding: json
    compression: none
  prometheus:
    endpoint: 127.0.0.1:{pport}
    tls:
      cert_file: {cert}
      key_file: {key}
      min_version: "1.3"
service:
  extensions: [health_check, bearertokenauth/in]
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp, zipkin, jaeger]
      exporters: [otlphttp]
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"""


def https(port, path, ca, method="GET", body=None, headers=None, cert=None, max_v=None,
          ciphers=None):
    """One HTTPS request on a new connection: (status, body), or ("error", reason)."""
    import http.client
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(*cert)
    if max_v:
        ctx.maximum_version = max_v
    if ciphers:
        ctx.set_ciphers(ciphers)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    except (ssl.SSLError, OSError, http.client.HTTPException) as e:
        return "error", str(e)
    finally:
        conn.close()


def plain_refused(port):
    """A cleartext HTTP request to a TLS port: True when no HTTP answer comes."""
    try:
        st, _, _ = http("GET", "http://127.0.0.1:%d/" % port, timeout=3)
        return False
    except Exception:
        return True


def case_servers(args, c):
    need_openssl()
    tmp = tempfile.mkdtemp(prefix="sy-servers-")
    pki = make_pki(tmp)
    rcert, rkey = os.path.join(tmp, "live.pem"), os.path.join(tmp, "live.key")
    shutil.copyfile(pki["server.pem"], rcert)
    shutil.copyfile(pki["server.key"], rkey)
    sink = Sink()
    ports = dict(hcport=free_port(), oport=free_port(), zport=free_port(), jport=free_port(),
                 jgport=free_port(), pport=free_port(), mport=free_port())
    cfg = SERVERS_CONFIG.format(cert=pki["server.pem"], key=pki["server.key"], ca=pki["ca.pem"],
                                rcert=rcert, rkey=rkey, sport=sink.port, **ports)
    ca = pki["ca.pem"]
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            # otlp http over TLS
            st, body = https(ports["oport"], "/v1/traces", ca, "POST", probe_body("o-tls"),
                             {"Content-Type": "application/json"})
            c.check(st == 200, "otlp http over TLS: 200 (%s %r)" % (st, body[:80]))
            # zipkin over TLS, with its one cipher suite
            st, body = https(ports["zport"], "/api/v2/spans", ca, "POST", zipkin_body("z-tls"),
                             {"Content-Type": "application/json"})
            c.check(st == 202, "zipkin over TLS: 202 (%s %r)" % (st, body[:80]))
            st, body = https(ports["zport"], "/api/v2/spans", ca, "POST", zipkin_body("z-no"),
                             {"Content-Type": "application/json"},
                             max_v=ssl.TLSVersion.TLSv1_2,
                             ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
            c.check(st == "error", "zipkin refuses a suite it does not list (%s %s)" %
                    (st, body))
            # jaeger thrift_http over TLS with auth
            jb = thrift_batch("jg-tls", "j-tls", 21)
            st, _ = https(ports["jport"], "/api/traces", ca, "POST", jb,
                          {"Content-Type": "application/x-thrift",
                           "Authorization": "Bearer tls-token"})
            c.check(st == 202, "thrift_http over TLS with the token: 202 (%s)" % st)
            st, body = https(ports["jport"], "/api/traces", ca, "POST",
                             thrift_batch("jg-tls", "j-no", 22),
                             {"Content-Type": "application/x-thrift"})
            c.check(st == 401 and body == b"Unauthorized\n",
                    "thrift_http over TLS without the token: 401 (%s %r)" % (st, body))
            try:
                wait_for("the TLS spans at the sink",
                         lambda: {"o-tls", "z-tls", "j-tls"} <= set(sink.span_names()), WAIT)
                c.check(True, "otlp, zipkin and thrift_http spans sent over TLS delivered")
            except AssertionError as e:
                c.check(False, "%s (%s)" % (e, sink.span_names()))
            c.check(not {"z-no", "j-no"} & set(sink.span_names()), "refused ones not delivered")
            # health_check: mutual TLS
            st, body = https(ports["hcport"], "/", ca,
                             cert=(pki["client.pem"], pki["client.key"]))
            c.check(st == 200 and b"Server available" in body,
                    "health_check over mutual TLS: 200 (%s %r)" % (st, body[:60]))
            st, body = https(ports["hcport"], "/", ca)
            c.check(st == "error", "health_check refuses a client without a certificate (%s)" %
                    body)
            # prometheus exporter: TLS 1.3 only
            mb = json.dumps({"resourceMetrics": [{"resource": {}, "scopeMetrics": [{
                "metrics": [{"name": "tls_gauge", "gauge": {"dataPoints": [{
                    "asDouble": 7, "timeUnixNano": str(int(time.time() * 1e9))}]}}]}]}]})
            st, _ = https(ports["oport"], "/v1/metrics", ca, "POST", mb.encode(),
                          {"Content-Type": "application/json"})
            c.check(st == 200, "otlp http takes the metric (%s)" % st)
            try:
                wait_for("tls_gauge on the TLS scrape endpoint",
                         lambda: re.search(rb"\ntls_gauge\{[^}]*\} 7\n",
                                           https(ports["pport"], "/metrics", ca)[1]) is not None,
                         WAIT)
                c.check(True, "prometheus exporter serves /metrics over TLS 1.3")
            except AssertionError as e:
                c.check(False, "%s: %r" % (e, https(ports["pport"], "/metrics", ca)))
            st, body = https(ports["pport"], "/metrics", ca, max_v=ssl.TLSVersion.TLSv1_2)
            c.check(st == "error", "min_version 1.3 refuses a TLS 1.2 client (%s)" % body)
            # jaeger grpc: TLS with ALPN h2
            got = handshake(ports["jgport"], ca, "ECDHE-ECDSA-AES128-GCM-SHA256")
            c.check(got == "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "jaeger grpc completes a TLS handshake with ALPN h2 (%s)" % got)
            # cleartext to every TLS port: no HTTP answer
            for name in ("oport", "zport", "jport", "hcport", "pport", "jgport"):
                c.check(plain_refused(ports[name]), "%s: a cleartext request gets no answer" %
                        name)
            # reload_interval: the otlp receiver's certificate replaced by one of the
            # other CA; new connections get it.
            shutil.copyfile(pki["other_server.pem"], rcert + ".new")
            shutil.copyfile(pki["other_server.key"], rkey + ".new")
            os.replace(rkey + ".new", rkey)
            os.replace(rcert + ".new", rcert)
            try:
                wait_for("the replaced certificate served",
                         lambda: https(ports["oport"], "/v1/traces", pki["other_ca.pem"], "POST",
                                       probe_body("o-new"),
                                       {"Content-Type": "application/json"})[0] == 200, WAIT)
                c.check(True, "reload_interval: the new certificate is served")
            except AssertionError as e:
                c.check(False, str(e))
            st, body = https(ports["oport"], "/v1/traces", ca, "POST", probe_body("o-old"),
                             {"Content-Type": "application/json"})
            c.check(st == "error", "the old CA no longer verifies it (%s)" % body)
            c.check(r.stop() == 0, "router exits 0")
            if c.failures:
                r.dump(60, "router: ")
        # validate: tls without a key file
        bad = cfg.replace("      max_version: \"1.2\"\n", "").replace(
            "    tls:\n      cert_file: %s\n      key_file: %s\n      cipher_suites" %
            (pki["server.pem"], pki["server.key"]),
            "    tls:\n      cert_file: %s\n      cipher_suites" % pki["server.pem"])
        rc, out = validate(args, bad, tmp)
        c.check(rc != 0 and "tls: a TLS server needs both cert_file and key_file" in out,
                "validate refuses zipkin tls without key_file (%s)" % out.strip()[-200:])
    finally:
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# defaults
# ---------------------------------------------------------------------------

DEFAULTS_CONFIG = """
extensions:
  health_check:
receivers:
  otlp:
    protocols:
      grpc:
      http:
  jaeger:
    protocols:
      grpc:
      thrift_http:
      thrift_compact:
      thrift_binary:
  zipkin:
exporters:
  nop:
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp, jaeger, zipkin]
      exporters: [nop]
"""

# port -> what listens there by default
DEFAULT_PORTS = {4317: "otlp grpc", 4318: "otlp http", 14250: "jaeger grpc",
                 14268: "jaeger thrift_http", 9411: "zipkin", 13133: "health_check",
                 8888: "telemetry metrics"}
DEFAULT_UDP = {6831: "jaeger thrift_compact", 6832: "jaeger thrift_binary"}


def loopback_up():
    """Brings `lo` up in a fresh network namespace (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, req))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1 | 0x40))
    finally:
        s.close()


def sockets(kind):
    """(ip, port) of every listening TCP socket, or every bound UDP socket, from
    /proc/net/{tcp,udp}{,6} of this network namespace."""
    out = []
    for fam in ("", "6"):
        path = "/proc/net/%s%s" % (kind, fam)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f.read().splitlines()[1:]:
                parts = line.split()
                local, state = parts[1], parts[3]
                if kind == "tcp" and state != "0A":  # LISTEN
                    continue
                addr, port = local.split(":")
                if fam == "":
                    ip = socket.inet_ntoa(struct.pack("<I", int(addr, 16)))
                else:
                    ip = socket.inet_ntop(socket.AF_INET6, b"".join(
                        struct.pack("<I", int(addr[i:i + 8], 16)) for i in range(0, 32, 8)))
                out.append((ip, int(port, 16)))
    return out


def case_defaults_inner(args, c):
    if args.netns:
        loopback_up()
    with Router(args.bin, [args.plugin_dir], DEFAULTS_CONFIG) as r:
        tcp, udp = sockets("tcp"), sockets("udp")
        for port, what in DEFAULT_PORTS.items():
            ips = sorted({ip for ip, p in tcp if p == port})
            c.check(ips == ["127.0.0.1"], "%s listens on 127.0.0.1:%d only (%s)" %
                    (what, port, ips))
        for port, what in DEFAULT_UDP.items():
            ips = sorted({ip for ip, p in udp if p == port})
            c.check(ips == ["127.0.0.1"], "%s is bound to 127.0.0.1:%d only (%s)" %
                    (what, port, ips))
        st, _, _ = http("GET", "http://127.0.0.1:13133/")
        c.check(st == 200, "health_check answers on localhost:13133 (%d)" % st)
        c.check(r.stop() == 0, "router exits 0")
        if c.failures:
            r.dump(60, "router: ")


def case_defaults(args, c):
    """Runs the check in a network namespace of its own when `unshare -n` works (the
    default ports are then free whatever else runs), else in this one."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10) \
        if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        print("unshare -n is not available: checking in this network namespace",
              file=sys.stderr)
        case_defaults_inner(args, c)
        return
    out = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                          "defaults_inner", "--netns", "--bin", args.bin, "--plugin-dir",
                          args.plugin_dir], capture_output=True, text=True, timeout=120)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    c.check(out.returncode == 0, "the defaults check in its own network namespace passed")


CASES = {"receivers": case_receivers, "lb": case_lb, "ciphers": case_ciphers,
         "reload": case_reload, "scrape_tls": case_scrape_tls, "servers": case_servers, "defaults": case_defaults, "defaults_inner": case_defaults_inner}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--netns", action="store_true")
    args = ap.parse_args()
    c = AuthChecks()
    CASES[args.case](args, c)
    sys.exit(c.finish())


if __name__ == "__main__":
    main()
