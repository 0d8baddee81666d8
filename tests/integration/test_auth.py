#!/usr/bin/env python3
"""Authentication (issue 11 item 3) through the real binary: the bearertokenauth and
basicauth extensions, the otlp receiver's `protocols.{http,grpc}.auth`, and the
otlp / otlphttp exporters' `auth`.

  test_auth.py CASE --bin BIN --plugin-dir DIR [--node-dir DIR --src-dir DIR]

Cases:
  bearer_js  bearertokenauth (token from a file) on the otlp receiver's HTTP and gRPC
             ports, driven by the OpenTelemetry JS SDK's OTLP trace exporters
             (exporter-trace-otlp-http and -grpc, the node_modules of
             tests/integration/node): the right token is delivered span by span, a
             wrong or missing one gets 401 / UNAUTHENTICATED and nothing is
             delivered; a raw 401 leaks nothing and carries WWW-Authenticate; the
             token file is rotated: the new token is taken and the old one refused
             within a bounded wait; the receiver's counters match.
  basic      basicauth with htpasswd.inline (plain, bcrypt $2y$, {SHA}) and
             htpasswd.file on OTLP/HTTP: right, wrong, unknown and malformed
             credentials, and the JS exporter with a Basic header.
  exporter   the otlp (gRPC) exporter with bearertokenauth through an otlp receiver
             that requires it, then the otlphttp exporter with bearertokenauth (a
             custom header) and with basicauth client_auth to a sink that records
             the headers; zipkin and loki (bearer) and prometheusremotewrite
             (basic) send their authenticator's header too.
  unknown    an authenticator that is not a started extension, or one that does not
             offer the side asked for, fails startup naming it, as the collector.

Every wait is bounded; python3 standard library only (ctypes for libcrypt).
"""
import argparse
import base64
import ctypes
import ctypes.util
import hashlib
from http.server import BaseHTTPRequestHandler
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Router, SinkHTTPServer, free_port, http, json_span,  # noqa: E402
                     json_traces, wait_for)

NODE_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 15.0
ROTATION_TIMEOUT = 10.0  # the token file is polled every second
STARTUP_FAIL_TIMEOUT = 20.0


class AuthChecks(Checks):
    """Checks with check() and an exit status."""

    def check(self, cond, what):
        return self(cond, what)

    def finish(self):
        if self.failures:
            print("%d check(s) failed" % len(self.failures), file=sys.stderr)
            return 1
        return 0


# ---------------------------------------------------------------------------
# A sink that records what the router's otlphttp exporters send
# ---------------------------------------------------------------------------


class Sink:
    """Records (path, headers, JSON body) of every POST and answers 200 "{}"."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.lock:
                    sink.got.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = SinkHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self, path=None):
        with self.lock:
            return [r for r in self.got if path is None or r[0] == path]

    def span_names(self, path=None):
        names = []
        for _, _, body in self.requests(path):
            doc = json.loads(body)
            for rs in doc.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    names += [s["name"] for s in ss.get("spans", [])]
        return names

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def metrics_text(port):
    _, _, body = http("GET", "http://127.0.0.1:%d/metrics" % port)
    return body.decode()


def metric(text, name, labels=""):
    """The value of the first series switchyard_<name>{...} whose labels hold
    `labels` ('exporter="otlp/wrong"'), or None."""
    for line in text.splitlines():
        if line.startswith("switchyard_" + name + "{") and labels in line.split("}")[0]:
            return float(line.rsplit(" ", 1)[1])
    return None


def raw_head(port, head, timeout=5.0):
    """Sends a request head (no body) and returns what the server answers before
    closing, as text."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode())
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and b"\r\n\r\n" not in out:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    return out.decode("latin-1")


def probe_body(name):
    return json.dumps(json_traces([json_span(name)], "auth-probe")).encode()


def post(port, name, authorization=None, extra=None):
    """One OTLP/JSON POST with one span named `name`; returns (status, headers, body)."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    headers.update(extra or {})
    return http("POST", "http://127.0.0.1:%d/v1/traces" % port, probe_body(name), headers)


# ---------------------------------------------------------------------------
# The JS exporters
# ---------------------------------------------------------------------------


class Node:
    """Runs auth_send.mjs from the node dir, where tests/integration/node's
    node_modules were installed by integration.node_setup."""

    def __init__(self, args):
        if not args.node_dir or not args.src_dir:
            raise SystemExit("FAIL: --node-dir and --src-dir are required for this case")
        probe = os.path.join(args.node_dir, "node_modules", "@opentelemetry",
                             "exporter-trace-otlp-grpc")
        if not os.path.isdir(probe):
            raise SystemExit("FAIL: %s is missing: run integration.node_setup first" % probe)
        self.script = os.path.join(args.node_dir, "auth_send.mjs")
        shutil.copyfile(os.path.join(args.src_dir, "auth_send.mjs"), self.script)

    def send(self, endpoint, protocol, prefix, authorization=None, count=3):
        cmd = ["node", self.script, "--endpoint", endpoint, "--protocol", protocol,
               "--prefix", prefix, "--count", str(count)]
        if authorization is not None:
            cmd += ["--authorization", authorization]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=NODE_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("auth_send.mjs did not finish within %.0f s" % NODE_TIMEOUT)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode != 0 or not lines:
            raise AssertionError("auth_send.mjs exited %d:\n%s\n%s" %
                                 (out.returncode, out.stdout, out.stderr))
        return json.loads(lines[-1])


# ---------------------------------------------------------------------------
# bearer_js
# ---------------------------------------------------------------------------

# The end of the receiver tests' configs: the otlp receiver's traces to the sink,
# as OTLP/JSON, and the router's metrics on a port of the test's.
SINK_TAIL = """exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sport}
    encoding: json
    compression: none
service:
  extensions: [EXT]
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"""

BEARER_CONFIG = """
extensions:
  bearertokenauth/in:
    filename: {token_file}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{hport}
        cors:
          allowed_origins: ["https://app.example"]
        auth:
          authenticator: bearertokenauth/in
      grpc:
        endpoint: 127.0.0.1:{gport}
        auth:
          authenticator: bearertokenauth/in
""" + SINK_TAIL.replace("EXT", "bearertokenauth/in")


def expect_delivered(c, sink, names, what):
    try:
        wait_for(what, lambda: set(names) <= set(sink.span_names()), DELIVERY_TIMEOUT)
        c.check(True, what)
    except AssertionError as e:
        c.check(False, "%s: %s (sink has %s)" % (what, e, sorted(sink.span_names())))


def case_bearer_js(args, c):
    node = Node(args)
    sink = Sink()
    hport, gport, mport = free_port(), free_port(), free_port()
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sy-auth-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("first-token\n")  # the line break is trimmed
    cfg = BEARER_CONFIG.format(token_file=token_file, hport=hport, gport=gport,
                               sport=sink.port, mport=mport)
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            http_ep = "http://127.0.0.1:%d" % hport
            grpc_ep = "http://127.0.0.1:%d" % gport

            # The right token, over HTTP and gRPC, through the JS exporters.
            res = node.send(http_ep, "http", "http-ok", "Bearer first-token")
            c.check(res["code"] == 0, "JS HTTP exporter with the right token: success (%s)" % res)
            res = node.send(grpc_ep, "grpc", "grpc-ok", "Bearer first-token")
            c.check(res["code"] == 0, "JS gRPC exporter with the right token: success (%s)" % res)
            expect_delivered(c, sink, ["http-ok-1", "http-ok-2", "http-ok-3", "grpc-ok-1",
                                       "grpc-ok-2", "grpc-ok-3"],
                             "the spans sent with the right token are delivered")

            # Wrong and missing tokens.
            res = node.send(http_ep, "http", "http-bad", "Bearer wrong-token")
            c.check(res["code"] == 1 and res["status"] == 401,
                    "JS HTTP exporter with a wrong token: failed with 401 (%s)" % res)
            res = node.send(http_ep, "http", "http-none", None)
            c.check(res["code"] == 1 and res["status"] == 401,
                    "JS HTTP exporter without a token: failed with 401 (%s)" % res)
            res = node.send(grpc_ep, "grpc", "grpc-bad", "Bearer wrong-token")
            c.check(res["code"] == 1 and res["status"] == 16,
                    "JS gRPC exporter with a wrong token: UNAUTHENTICATED (16) (%s)" % res)
            res = node.send(grpc_ep, "grpc", "grpc-none", None)
            c.check(res["code"] == 1 and res["status"] == 16,
                    "JS gRPC exporter without a token: UNAUTHENTICATED (16) (%s)" % res)
            # A prefix of the token, and the token with another scheme.
            st, _, _ = post(hport, "raw-prefix", "Bearer first-toke")
            c.check(st == 401, "a prefix of the token is refused (%d)" % st)
            st, _, _ = post(hport, "raw-scheme", "Basic first-token")
            c.check(st == 401, "the token under another scheme is refused (%d)" % st)

            # What a refused request is told: nothing of what it sent.
            st, hdrs, body = post(hport, "raw-bad", "Bearer secret-guess-123")
            c.check(st == 401, "raw POST with a wrong token: 401 (%d)" % st)
            c.check(body == b"Unauthorized\n", "401 body is 'Unauthorized' (%r)" % body)
            c.check(b"secret-guess" not in body and b"first-token" not in body,
                    "401 body echoes neither token")
            c.check(hdrs.get("WWW-Authenticate") == "Bearer",
                    "401 carries WWW-Authenticate: Bearer (%r)" % hdrs.get("WWW-Authenticate"))
            # Refused from the headers alone: a large announced body is not waited
            # for, and "Expect: 100-continue" gets the 401 instead of 100 Continue.
            for expect in ("", "Expect: 100-continue\r\n"):
                head = raw_head(hport, "POST /v1/traces HTTP/1.1\r\nHost: x\r\n"
                                "Content-Type: application/json\r\n"
                                "Authorization: Bearer nope\r\n%s"
                                "Content-Length: 10000000\r\n\r\n" % expect)
                c.check(head.startswith("HTTP/1.1 401"),
                        "401 before the body is sent%s (%r)" %
                        (" (100-continue)" if expect else "", head[:40]))
            # A CORS preflight needs no credentials (browsers never send them).
            st, hdrs, _ = http("OPTIONS", "http://127.0.0.1:%d/v1/traces" % hport, None,
                               {"Origin": "https://app.example",
                                "Access-Control-Request-Method": "POST"})
            c.check(st == 204 and hdrs.get("Access-Control-Allow-Origin") == "https://app.example",
                    "a CORS preflight without credentials: 204 (%d)" % st)
            # A wrong path is refused before routing: it tells nothing either.
            st, _, _ = http("POST", "http://127.0.0.1:%d/nowhere" % hport, b"{}",
                            {"Content-Type": "application/json"})
            c.check(st == 401, "an unknown path without credentials is 401 (%d)" % st)

            time.sleep(1.0)  # anything wrongly accepted would have been exported by now
            bad = [n for n in sink.span_names() if n.split("-")[0] in ("raw",) or
                   n.startswith(("http-bad", "http-none", "grpc-bad", "grpc-none"))]
            c.check(not bad, "nothing sent without the right token was delivered (%s)" % bad)

            text = metrics_text(mport)
            # 2 JS + 2 prefix/scheme + 1 raw + 2 raw heads + 1 unknown path over HTTP;
            # 2 JS over gRPC.
            c.check(metric(text, "receiver_otlp_http_auth_failures_total") == 8,
                    "receiver_otlp_http_auth_failures_total is 8 (%s)" %
                    metric(text, "receiver_otlp_http_auth_failures_total"))
            c.check(metric(text, "receiver_otlp_grpc_auth_failures_total") == 2,
                    "receiver_otlp_grpc_auth_failures_total is 2 (%s)" %
                    metric(text, "receiver_otlp_grpc_auth_failures_total"))
            c.check(metric(text, "extension_bearertokenauth_failed_requests_total") == 10,
                    "extension_bearertokenauth_failed_requests_total is 10 (%s)" %
                    metric(text, "extension_bearertokenauth_failed_requests_total"))

            # Rotation: replace the file (a new inode, as an atomic rename does).
            tmpfile = token_file + ".new"
            with open(tmpfile, "w") as f:
                f.write("second-token")
            os.replace(tmpfile, token_file)
            t0 = time.monotonic()
            n = [0]

            def new_token_works():
                n[0] += 1
                return post(hport, "rot-probe-%d" % n[0], "Bearer second-token")[0] == 200

            try:
                wait_for("the new token to be accepted", new_token_works, ROTATION_TIMEOUT)
                c.check(True, "the new token is accepted %.1f s after the rotation" %
                        (time.monotonic() - t0))
            except AssertionError as e:
                c.check(False, str(e))
            st, _, _ = post(hport, "rot-old", "Bearer first-token")
            c.check(st == 401, "the old token is refused after the rotation (%d)" % st)
            res = node.send(grpc_ep, "grpc", "grpc-rot", "Bearer second-token")
            c.check(res["code"] == 0, "JS gRPC exporter with the new token: success (%s)" % res)
            res = node.send(grpc_ep, "grpc", "grpc-rot-old", "Bearer first-token")
            c.check(res["status"] == 16, "JS gRPC exporter with the old token: 16 (%s)" % res)
            # Rewriting in place (same inode) is noticed as well.
            with open(token_file, "w") as f:
                f.write("third-token-longer")
            try:
                wait_for("the rewritten token to be accepted",
                         lambda: post(hport, "rot3", "Bearer third-token-longer")[0] == 200,
                         ROTATION_TIMEOUT)
                c.check(True, "a token rewritten in place is accepted")
            except AssertionError as e:
                c.check(False, str(e))
            expect_delivered(c, sink, ["grpc-rot-1", "grpc-rot-2", "grpc-rot-3", "rot3"],
                             "spans sent with the rotated tokens are delivered")
            c.check(not [n for n in sink.span_names() if n.startswith(("grpc-rot-old", "rot-old"))],
                    "nothing sent with the old token after the rotation was delivered")
            text = metrics_text(mport)
            reloads = metric(text, "extension_bearertokenauth_token_reloads_total")
            c.check(reloads is not None and reloads >= 2,
                    "extension_bearertokenauth_token_reloads_total >= 2 (%s)" % reloads)
            # An empty file is not a token: "Bearer " must not get in.
            with open(token_file, "w") as f:
                f.write("  \n")
            time.sleep(2.5)
            st, _, _ = post(hport, "rot-empty", "Bearer ")
            c.check(st == 401, "an emptied token file does not let 'Bearer ' in (%d)" % st)
            st, _, _ = post(hport, "rot-kept0", "Bearer third-token-longer")
            c.check(st == 200, "an emptied token file keeps the last token (%d)" % st)
            # An unreadable file keeps the token in use.
            os.remove(token_file)
            time.sleep(1.5)
            st, _, _ = post(hport, "rot-kept", "Bearer third-token-longer")
            c.check(st == 200, "a removed token file keeps the last token (%d)" % st)
            rc = r.stop()
            c.check(rc == 0, "router exits 0 (%s)" % rc)
            c.check("the previous token stays in use" in r.output(),
                    "the failed reload is logged")
    finally:
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# basic
# ---------------------------------------------------------------------------

BASIC_CONFIG = """
extensions:
  basicauth/in:
    htpasswd:
      file: {htfile}
      inline: |
        # users of the test
        alice:plain-secret
        bob:{bcrypt}
        carol:{sha}
        dave:inline-wins
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{hport}
        auth:
          authenticator: basicauth/in
""" + SINK_TAIL.replace("EXT", "basicauth/in")


def bcrypt_hash(password):
    """A $2y$ bcrypt hash (cost 5) made by libcrypt's crypt_gensalt() and crypt()."""
    name = ctypes.util.find_library("crypt")
    if not name:
        raise SystemExit("FAIL: libcrypt is not installed (deploy/debian-deps.sh --test)")
    lib = ctypes.CDLL(name)
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(b"$2y$", 5, None, 0)
    h = lib.crypt(password.encode(), setting)
    if not h or not h.startswith(b"$2y$05$"):
        raise SystemExit("FAIL: libcrypt made no bcrypt hash (%r)" % h)
    return h.decode()


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def case_basic(args, c):
    node = Node(args) if args.node_dir else None
    sink = Sink()
    hport, mport = free_port(), free_port()
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sy-basic-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    htfile = os.path.join(tmp, "htpasswd")
    with open(htfile, "w") as f:
        f.write("erin:{SHA}%s\ndave:file-loses\n" %
                base64.b64encode(hashlib.sha1(b"erin-pw").digest()).decode())
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"carol-pw").digest()).decode()
    cfg = BASIC_CONFIG.format(htfile=htfile, bcrypt=bcrypt_hash("bob-pw"), sha=sha,
                              hport=hport, sport=sink.port, mport=mport)
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            good = [("alice", "plain-secret", "plain"), ("bob", "bob-pw", "bcrypt $2y$"),
                    ("carol", "carol-pw", "{SHA}"), ("erin", "erin-pw", "{SHA} from the file"),
                    ("dave", "inline-wins", "inline over file")]
            for user, pw, what in good:
                st, _, _ = post(hport, "ok-" + user, basic(user, pw))
                c.check(st == 200, "%s (%s): 200 (%d)" % (user, what, st))
            bad = [("alice", "plain-secreT", "wrong case"), ("alice", "plain-secret ", "extra"),
                   ("alice", "", "empty password"), ("bob", "bob-pw2", "bcrypt, wrong"),
                   ("carol", "carol", "{SHA}, wrong"), ("dave", "file-loses", "file's entry"),
                   ("mallory", "plain-secret", "unknown user")]
            for user, pw, what in bad:
                st, hdrs, body = post(hport, "bad-" + user, basic(user, pw))
                c.check(st == 401, "%s (%s): 401 (%d)" % (user, what, st))
                c.check(pw.encode() not in body or not pw, "%s: the 401 body has no password" % user)
            st, hdrs, _ = post(hport, "bad-garbage", "Basic !!!not-base64!!!")
            c.check(st == 401, "malformed base64: 401 (%d)" % st)
            c.check(hdrs.get("WWW-Authenticate", "").startswith('Basic realm="'),
                    "401 carries WWW-Authenticate: Basic realm=... (%r)" %
                    hdrs.get("WWW-Authenticate"))
            st, _, _ = post(hport, "bad-nocolon",
                            "Basic " + base64.b64encode(b"alice").decode())
            c.check(st == 401, "credentials without ':': 401 (%d)" % st)
            st, _, _ = post(hport, "bad-bearer", "Bearer plain-secret")
            c.check(st == 401, "another scheme: 401 (%d)" % st)
            st, _, _ = post(hport, "bad-none", None)
            c.check(st == 401, "no Authorization: 401 (%d)" % st)
            if node:
                res = node.send("http://127.0.0.1:%d" % hport, "http", "js-basic",
                                basic("bob", "bob-pw"))
                c.check(res["code"] == 0, "JS HTTP exporter with Basic bob: success (%s)" % res)
                res = node.send("http://127.0.0.1:%d" % hport, "http", "js-basic-bad",
                                basic("bob", "nope"))
                c.check(res["status"] == 401, "JS HTTP exporter, wrong password: 401 (%s)" % res)
            want = ["ok-" + u for u, _, _ in good] + (["js-basic-1"] if node else [])
            expect_delivered(c, sink, want, "requests with right credentials are delivered")
            time.sleep(1.0)
            leaked = [n for n in sink.span_names() if n.startswith(("bad-", "js-basic-bad"))]
            c.check(not leaked, "nothing refused was delivered (%s)" % leaked)
            failures = len(bad) + 4 + (1 if node else 0)
            text = metrics_text(mport)
            c.check(metric(text, "receiver_otlp_http_auth_failures_total") == failures,
                    "receiver_otlp_http_auth_failures_total is %d (%s)" %
                    (failures, metric(text, "receiver_otlp_http_auth_failures_total")))
            c.check(metric(text, "extension_basicauth_failed_requests_total") == failures,
                    "extension_basicauth_failed_requests_total is %d" % failures)
            c.check(r.stop() == 0, "router exits 0")
    finally:
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# exporter
# ---------------------------------------------------------------------------

EXPORTER_CONFIG = """
extensions:
  bearertokenauth/grpc_out:
    token: hop-token
  bearertokenauth/grpc_in:
    token: hop-token
  bearertokenauth/grpc_wrong:
    token: not-the-hop-token
  bearertokenauth/http_out:
    token: sink-token
    header: X-Api-Key
  basicauth/http_out:
    client_auth:
      username: exporter-user
      password: "p@ss:w0rd"
receivers:
  otlp/front:
    protocols:
      http:
        endpoint: 127.0.0.1:{fport}
  otlp/front2:
    protocols:
      http:
        endpoint: 127.0.0.1:{fport2}
  otlp/back:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{gport}
        auth:
          authenticator: bearertokenauth/grpc_in
exporters:
  otlp/hop:
    endpoint: 127.0.0.1:{gport}
    tls:
      insecure: true
    auth:
      authenticator: bearertokenauth/grpc_out
  otlp/wrong:
    endpoint: 127.0.0.1:{gport}
    tls:
      insecure: true
    auth:
      authenticator: bearertokenauth/grpc_wrong
  otlphttp/bearer:
    traces_endpoint: http://127.0.0.1:{sport}/bearer
    encoding: json
    compression: none
    auth:
      authenticator: bearertokenauth/http_out
  otlphttp/basic:
    traces_endpoint: http://127.0.0.1:{sport}/basic
    encoding: json
    compression: none
    auth:
      authenticator: basicauth/http_out
  zipkin/auth:
    endpoint: http://127.0.0.1:{sport}/zipkin
    auth:
      authenticator: bearertokenauth/http_out
  loki/auth:
    endpoint: http://127.0.0.1:{sport}/loki
    auth:
      authenticator: bearertokenauth/http_out
  prometheusremotewrite/auth:
    endpoint: http://127.0.0.1:{sport}/prw
    auth:
      authenticator: basicauth/http_out
service:
  extensions: [bearertokenauth/grpc_out, bearertokenauth/grpc_in, bearertokenauth/http_out,
               basicauth/http_out, bearertokenauth/grpc_wrong]
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces/a:
      receivers: [otlp/front]
      exporters: [otlp/hop]
    traces/c:
      receivers: [otlp/front2]
      exporters: [otlp/wrong]
    traces/b:
      receivers: [otlp/back]
      exporters: [otlphttp/bearer, otlphttp/basic, zipkin/auth]
    metrics/m:
      receivers: [otlp/front]
      exporters: [prometheusremotewrite/auth]
    logs/l:
      receivers: [otlp/front]
      exporters: [loki/auth]
"""

# One gauge point and one log record, OTLP/JSON, for the metrics and logs pipelines.
AUTH_METRIC = {"resourceMetrics": [{"resource": {}, "scopeMetrics": [{"metrics": [{
    "name": "auth_probe", "gauge": {"dataPoints": [{"asDouble": 1.5,
                                                    "timeUnixNano": "%d"}]}}]}]}]}
AUTH_LOG = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [{
    "timeUnixNano": "%d", "body": {"stringValue": "auth probe"}}]}]}]}


def case_exporter(args, c):
    sink = Sink()
    fport, fport2, gport, mport = free_port(), free_port(), free_port(), free_port()
    cfg = EXPORTER_CONFIG.format(fport=fport, fport2=fport2, gport=gport, sport=sink.port,
                                 mport=mport)
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            names = ["exp-%d" % i for i in range(5)]
            for n in names:
                st, _, _ = post(fport, n)
                c.check(st == 200, "front receiver takes %s (%d)" % (n, st))
            for path in ("/bearer", "/basic"):
                try:
                    wait_for("spans at " + path,
                             lambda p=path: set(names) <= set(sink.span_names(p)),
                             DELIVERY_TIMEOUT)
                    c.check(True, "every span crossed the authenticated gRPC hop to " + path)
                except AssertionError as e:
                    c.check(False, str(e))
            want_basic = "Basic " + base64.b64encode(b"exporter-user:p@ss:w0rd").decode()
            for path, hdrs, _ in sink.requests("/bearer") + sink.requests("/basic"):
                lower = {k.lower(): v for k, v in hdrs.items()}
                if path == "/bearer":
                    c.check(lower.get("x-api-key") == "Bearer sink-token",
                            "otlphttp/bearer sends X-Api-Key: Bearer sink-token (%r)" %
                            lower.get("x-api-key"))
                    c.check("authorization" not in lower,
                            "otlphttp/bearer sends no Authorization header")
                else:
                    c.check(lower.get("authorization") == want_basic,
                            "otlphttp/basic sends %s (%r)" % (want_basic,
                                                            lower.get("authorization")))
                c.check(lower.get("content-type") == "application/json",
                        "the exporter's own headers stay (%r)" % lower.get("content-type"))
            # zipkin, loki and prometheusremotewrite take the same auth key (the
            # shared exporter glue): each request carries its authenticator's header.
            now_ns = int(time.time() * 1e9)
            for kind, doc in (("metrics", AUTH_METRIC), ("logs", AUTH_LOG)):
                body = json.dumps(doc).replace('"%d"', '"%d"' % now_ns).encode()
                st, _, _ = http("POST", "http://127.0.0.1:%d/v1/%s" % (fport, kind), body,
                                {"Content-Type": "application/json"})
                c.check(st == 200, "front receiver takes the %s probe (%d)" % (kind, st))
            for path, header, want in (("/zipkin", "x-api-key", "Bearer sink-token"),
                                       ("/loki", "x-api-key", "Bearer sink-token"),
                                       ("/prw", "authorization", want_basic)):
                try:
                    wait_for("a request at " + path, lambda p=path: sink.requests(p),
                             DELIVERY_TIMEOUT)
                except AssertionError as e:
                    c.check(False, str(e))
                    continue
                got = [{k.lower(): v for k, v in h.items()}.get(header)
                       for _, h, _ in sink.requests(path)]
                c.check(got and all(g == want for g in got),
                        "%s sends %s: %s (%r)" % (path[1:], header, want, got))
            text = metrics_text(mport)
            c.check(metric(text, "receiver_otlp_grpc_auth_failures_total",
                           'receiver="otlp/back"') == 0,
                    "the gRPC hop never failed to authenticate")
            # An exporter with the wrong token is refused by the receiver: counted on
            # both sides, never delivered.
            for i in range(3):
                st, _, _ = post(fport2, "wrong-%d" % i)
                c.check(st == 200, "front2 takes wrong-%d (%d)" % (i, st))

            def refused_three():
                t = metrics_text(mport)
                return (metric(t, "receiver_otlp_grpc_auth_failures_total",
                               'receiver="otlp/back"') == 3 and
                        metric(t, "exporter_send_failed_spans_total",
                               'exporter="otlp/wrong"') == 3)

            try:
                wait_for("3 refused calls", refused_three, DELIVERY_TIMEOUT)
                c.check(True, "the exporter with a wrong token: 3 calls refused "
                        "UNAUTHENTICATED and counted as failed sends")
            except AssertionError as e:
                c.check(False, "%s:\n%s" % (e, metrics_text(mport)))
            time.sleep(0.5)
            c.check(not [n for p in ("/bearer", "/basic") for n in sink.span_names(p)
                         if n.startswith("wrong-")],
                    "nothing the wrong token sent was delivered")
            c.check(r.stop() == 0, "router exits 0")
            if c.failures:
                r.dump(80, "router: ")
    finally:
        sink.stop()


# ---------------------------------------------------------------------------
# unknown
# ---------------------------------------------------------------------------

UNKNOWN_BASE = """
extensions:
  health_check:
    endpoint: 127.0.0.1:{hcport}
  basicauth/client:
    client_auth:
      username: u
      password: p
  bearertokenauth/ok:
    token: t
receivers:
  otlp:
    protocols:
      {proto}:
        endpoint: 127.0.0.1:{rport}
        auth:
          authenticator: {recv_auth}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sport}
    auth:
      authenticator: {exp_auth}
service:
  extensions: [health_check, basicauth/client, bearertokenauth/ok]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"""


def case_unknown(args, c):
    cases = [
        ("http", "bearertokenauth/nope", "bearertokenauth/ok",
         'protocols.http.auth: failed to resolve authenticator "bearertokenauth/nope": '
         'authenticator not found'),
        ("grpc", "bearertokenauth/nope", "bearertokenauth/ok",
         'protocols.grpc.auth: failed to resolve authenticator "bearertokenauth/nope": '
         'authenticator not found'),
        ("http", "health_check", "bearertokenauth/ok",
         'failed to resolve authenticator "health_check": authenticator not found'),
        ("http", "basicauth/client", "bearertokenauth/ok",
         'failed to resolve authenticator "basicauth/client": authenticator not found'),
        ("http", "bearertokenauth/ok", "bearertokenauth/absent",
         'auth: failed to resolve authenticator "bearertokenauth/absent": '
         'authenticator not found'),
    ]
    for proto, recv_auth, exp_auth, message in cases:
        cfg = UNKNOWN_BASE.format(hcport=free_port(), proto=proto, rport=free_port(),
                                  recv_auth=recv_auth, sport=free_port(), exp_auth=exp_auth)
        with Router(args.bin, [args.plugin_dir], cfg, wait=False) as r:
            try:
                rc = r.proc.wait(timeout=STARTUP_FAIL_TIMEOUT)
            except subprocess.TimeoutExpired:
                rc = None
            out = r.output()
            c.check(rc is not None and rc != 0,
                    "%s / %s: startup fails (exit %s)" % (recv_auth, exp_auth, rc))
            c.check(message in out, "%s / %s: the error says %r" % (recv_auth, exp_auth, message))
            c.check("Everything is ready" not in out, "%s / %s: never ready" %
                    (recv_auth, exp_auth))
            if message not in out:
                print(out, file=sys.stderr)
    # A config without token or filename is refused by validate.
    bad = UNKNOWN_BASE.replace("    token: t\n", "    scheme: Bearer\n").format(
        hcport=free_port(), proto="http", rport=free_port(), recv_auth="bearertokenauth/ok",
        sport=free_port(), exp_auth="bearertokenauth/ok")
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sy-auth-bad-%d.yaml" % os.getpid())
    with open(path, "w") as f:
        f.write(bad)
    try:
        out = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                              args.plugin_dir], capture_output=True, text=True, timeout=30)
    finally:
        os.remove(path)
    c.check(out.returncode != 0 and "either token or filename must be set" in out.stderr + out.stdout,
            "validate refuses bearertokenauth without token or filename (%d: %s)" %
            (out.returncode, (out.stderr + out.stdout).strip()[-300:]))


# ---------------------------------------------------------------------------
# tls_versions (issue 11 item 3, point 7): tls.min_version / max_version of the
# exporters
# ---------------------------------------------------------------------------

TLS_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{hport}
exporters:
  otlphttp/v12:
    traces_endpoint: https://127.0.0.1:{sport}/v12
    encoding: json
    compression: none
    retry_on_failure:
      enabled: false
    tls:
      ca_file: {ca}
      max_version: "1.2"
  otlphttp/v13:
    traces_endpoint: https://127.0.0.1:{sport}/v13
    encoding: json
    compression: none
    retry_on_failure:
      enabled: false
    tls:
      ca_file: {ca}
      min_version: "1.3"
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp/v12, otlphttp/v13]
"""


def case_tls_versions(args, c):
    import ssl
    if not shutil.which("openssl"):
        raise SystemExit("FAIL: the openssl command is needed to make the test certificate")
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sy-tlsv-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    sink = Sink()
    # The sink speaks TLS 1.2 at most, and records the version of each request.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sink.server.socket = ctx.wrap_socket(sink.server.socket, server_side=True)
    hport, mport = free_port(), free_port()
    cfg = TLS_CONFIG.format(hport=hport, sport=sink.port, ca=cert, mport=mport)
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            for i in range(3):
                st, _, _ = post(hport, "tls-%d" % i)
                c.check(st == 200, "receiver takes tls-%d (%d)" % (i, st))
            try:
                wait_for("spans over TLS 1.2",
                         lambda: {"tls-0", "tls-1", "tls-2"} <= set(sink.span_names("/v12")),
                         DELIVERY_TIMEOUT)
                c.check(True, "max_version 1.2 delivers to a TLS 1.2 server (ca_file verifies it)")
            except AssertionError as e:
                c.check(False, str(e))

            def v13_failed():
                return metric(metrics_text(mport), "exporter_send_failed_spans_total",
                              'exporter="otlphttp/v13"') == 3

            try:
                wait_for("min_version 1.3 to fail", v13_failed, DELIVERY_TIMEOUT)
                c.check(True, "min_version 1.3 refuses a TLS 1.2 server: 3 spans failed")
            except AssertionError as e:
                c.check(False, str(e))
            c.check(not sink.requests("/v13"), "nothing reached the sink under min_version 1.3")
            c.check(r.stop() == 0, "router exits 0")
        # Bad versions are refused by validate.
        for tls, msg in [('min_version: "1.4"', "'tls.min_version': unsupported TLS version"),
                         ('min_version: "1.3"\n      max_version: "1.2"',
                          "'tls.min_version' (1.3) is above 'tls.max_version' (1.2)")]:
            bad = cfg.replace('max_version: "1.2"', tls, 1)
            path = os.path.join(tmp, "bad.yaml")
            with open(path, "w") as f:
                f.write(bad)
            out = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                                  args.plugin_dir], capture_output=True, text=True, timeout=30)
            c.check(out.returncode != 0 and msg in out.stdout + out.stderr,
                    "validate refuses %s (%s)" % (tls.replace("\n      ", ", "),
                                                  (out.stdout + out.stderr).strip()[-200:]))
    finally:
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


CASES = {"bearer_js": case_bearer_js, "tls_versions": case_tls_versions, "basic": case_basic, "exporter": case_exporter,
         "unknown": case_unknown}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--node-dir")
    ap.add_argument("--src-dir")
    args = ap.parse_args()
    c = AuthChecks()
    CASES[args.case](args, c)
    sys.exit(c.finish())


if __name__ == "__main__":
    main()
