"""deploy.helm's runs: the examples' rendered configurations as local routers,
chained as their pods would be, in front of a backend router writing a file."""
import json
import os
import re
import sys

import yaml

from helm_common import HERE, REPO, by_kind, check, config_of, docs_of, example, render

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402  (free ports, the Router process wrapper, OTLP/JSON)


def pod_endpoint_sets(config, path=()):
    """--set options that move every endpoint the chart puts on ${env:MY_POD_IP}
    to a free port on 127.0.0.1, as the pod's own IP would be; returns
    (options, {dotted path: "127.0.0.1:port"})."""
    sets, where = [], {}
    if isinstance(config, dict):
        for k, v in config.items():
            if k in ("endpoint", "address") and isinstance(v, str) and "${env:MY_POD_IP}" in v:
                addr = "127.0.0.1:%d" % harness.free_port()
                sets += ["--set", "::".join(path + (k,)) + "=" + addr]
                where[".".join(path + (k,))] = addr
            else:
                s, w = pod_endpoint_sets(v, path + (k,))
                sets += s
                where.update(w)
    return sets, where


def rendered_config(args, renderer, release, files):
    r = render(renderer, args.chart, release, files, [])
    if not check(r.returncode == 0, "run: render %s: %s" % (release, r.stderr)):
        return None
    return config_of(by_kind(docs_of(r.stdout)))


def backend_config(out_file, protocol, port):
    """A router standing for the backend: OTLP in, every signal to a file."""
    pipe = {"receivers": ["otlp"], "exporters": ["file"]}
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {protocol: {"endpoint": "127.0.0.1:%d" % port}}}},
        "exporters": {"file": {"path": out_file, "flush_interval": "100ms"}},
        "service": {"telemetry": {"metrics": {"level": "none"}},
                    "pipelines": {"traces": pipe, "metrics": pipe, "logs": pipe}}})


def check_probe(name, where):
    """The probes' target: health_check on "/" answers 200 once ready."""
    url = "http://%s/" % where["extensions.health_check.endpoint"]
    status, _, body = harness.http("GET", url)
    check(status == 200 and json.loads(body)["status"] == "Server available",
          "%s: probe %s answered %d %r" % (name, url, status, body))


def stop_in_order(routers):
    """SIGTERM each in turn: each drains into the next, the last flushes its file."""
    for name, r in routers:
        rc = r.stop()
        check(rc == 0, "%s exited with %s:\n%s" % (name, rc, r.output()[-2000:]))


def file_items(out_file):
    """{"spans": {traceId: [names]}, "metrics": [names], "logs": [bodies]} from the
    file exporter's OTLP/JSON lines."""
    got = {"spans": {}, "metrics": [], "logs": []}
    with open(out_file) as f:
        for line in f:
            req = json.loads(line)
            for rs in req.get("resourceSpans", []):
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        got["spans"].setdefault(sp["traceId"], []).append(sp["name"])
            for rm in req.get("resourceMetrics", []):
                for sm in rm["scopeMetrics"]:
                    got["metrics"] += [m["name"] for m in sm["metrics"]]
            for rl in req.get("resourceLogs", []):
                for sl in rl["scopeLogs"]:
                    got["logs"] += [r["body"]["stringValue"] for r in sl["logRecords"]]
    return got


def run_chain(args, renderer, tmp, what, tiers, backend_protocol, backend_set, body):
    """Runs rendered tiers in a chain, as their pods would, in front of a backend
    router writing a file: tiers is [(release, values files, sets(where of the
    next tier))], first to last; backend_set(port) points the last tier at the
    backend. Only network addresses change (--set), as Kubernetes would give
    them. body(wheres) sends and returns after stopping nothing; returns the
    backend file's items, or None."""
    os.environ["MY_POD_IP"] = "127.0.0.1"
    out_file = os.path.join(tmp, what + ".backend.json")
    backend_port = harness.free_port()
    configs = [rendered_config(args, renderer, rel, files) for rel, files, _ in tiers]
    if None in configs:
        return None
    wheres, sets = [], []
    for cfg in configs:
        s_, w = pod_endpoint_sets(yaml.safe_load(cfg))
        wheres.append(w)
        sets.append(s_)
    sets[-1] += backend_set(backend_port)
    for i in range(len(tiers) - 1):
        sets[i] += tiers[i][2](wheres[i + 1])
    routers = []
    try:
        routers.append(("backend", harness.Router(
            args.bin, [args.plugin_dir], backend_config(out_file, backend_protocol,
                                                        backend_port))))
        for i in reversed(range(len(tiers))):
            r = harness.Router(args.bin, [args.plugin_dir], configs[i], extra_args=sets[i])
            routers.insert(0, (tiers[i][0], r))
        for (name, _), w in zip(routers, wheres):
            check_probe("%s: %s" % (what, name), w)
        body(wheres)
        stop_in_order(routers)
        return file_items(out_file)
    except (AssertionError, OSError, ValueError) as e:
        check(False, "%s: %s" % (what, e))
        for _, r in routers:
            r.dump(40, prefix="  router: ")
        return None
    finally:
        for _, r in routers:
            r.cleanup()


def run_two_tiers(args, renderer, tmp):
    """The load-balancing and sampling-tier examples: OTLP/JSON into the first tier,
    routed by trace id to the second, tail-sampled there (errors and slow traces
    kept), exported to the backend."""
    ids = {"a": "a" * 32, "b": "b" * 32, "c": "c" * 32}

    def lb_to_sampler(sampler):
        port = sampler["receivers.otlp.protocols.grpc.endpoint"].split(":")[1]
        return ["--set", "exporters::loadbalancing::resolver::dns::hostname=127.0.0.1",
                "--set", "exporters::loadbalancing::resolver::dns::port=" + port]

    def send(wheres):
        metrics_url = "http://%s/metrics" % wheres[0]["service.telemetry.metrics.address"]
        harness.wait_for("the load-balancing tier to resolve the sampler", lambda: re.search(
            r"^switchyard_loadbalancer_num_backends(\{[^}]*\})? 1$",
            harness.http("GET", metrics_url)[2].decode(), re.M), 10.0)
        # trace a: an error; trace b: fast and fine (dropped); trace c: slow (2 s)
        spans = []
        for t, tid in ids.items():
            for i in range(3):
                sp = harness.json_span("%s-%d" % (t, i), trace_id=tid,
                                       span_id="%s%015d" % (t, i),
                                       end_ns=harness.START_NS + (2_000_000_000 if t == "c"
                                                                  else 1_000_000))
                if t == "a" and i == 1:
                    sp["status"] = {"code": 2}
                spans.append(sp)
        url = "http://%s/v1/traces" % wheres[0]["receivers.otlp.protocols.http.endpoint"]
        status, _, body = harness.post_json(url, harness.json_traces(spans, "helm-e2e"))
        check(status == 200, "two tiers: the first tier answered %d %r" % (status, body))

    got = run_chain(args, renderer, tmp, "two tiers", [
        ("switchyard-lb", [example("loadbalancing-tier")], lb_to_sampler),
        ("switchyard-sampler", [example("sampling-tier"),
                                os.path.join(HERE, "values", "e2e-sampler.yaml")], None),
    ], "grpc", lambda port: ["--set", "exporters::otlp/backend::endpoint=127.0.0.1:%d" % port],
        send)
    if got is not None:
        spans = got["spans"]
        check(sorted(spans) == [ids["a"], ids["c"]] and
              sorted(spans[ids["a"]]) == ["a-0", "a-1", "a-2"] and
              sorted(spans[ids["c"]]) == ["c-0", "c-1", "c-2"],
              "two tiers: the backend got %r, expected traces a and c, 3 spans each" % spans)
        print("two tiers: lb -> sampler -> backend kept %d of 3 traces" % len(spans))


def run_agent_gateway(args, renderer, tmp):
    """The agent and gateway examples: a span, a metric and a log record into the
    agent, forwarded to the gateway (OTLP/gRPC), exported to the backend
    (OTLP/HTTP)."""
    now = str(harness.START_NS)
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "helm-e2e"}}]}
    requests = {
        "traces": harness.json_traces([harness.json_span("agent-span")], "helm-e2e"),
        "metrics": {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{
            "scope": {"name": "t"}, "metrics": [{"name": "helm.e2e.requests", "sum": {
                "aggregationTemporality": 2, "isMonotonic": True,
                "dataPoints": [{"asInt": "7", "timeUnixNano": now}]}}]}]}]},
        "logs": {"resourceLogs": [{"resource": resource, "scopeLogs": [{
            "scope": {"name": "t"}, "logRecords": [{
                "timeUnixNano": now, "severityNumber": 9,
                "body": {"stringValue": "hello from the agent"}}]}]}]},
    }

    def agent_to_gateway(gateway):
        return ["--set", "exporters::otlp/gateway::endpoint=" +
                gateway["receivers.otlp.protocols.grpc.endpoint"]]

    def send(wheres):
        base = "http://%s/v1/" % wheres[0]["receivers.otlp.protocols.http.endpoint"]
        for signal, req in requests.items():
            status, _, body = harness.post_json(base + signal, req)
            check(status == 200, "agent: %s answered %d %r" % (signal, status, body))

    got = run_chain(args, renderer, tmp, "agent and gateway", [
        ("switchyard-agent", [example("agent")], agent_to_gateway),
        ("switchyard-gateway", [example("gateway")], None),
    ], "http", lambda port: ["--set", "exporters::otlphttp::endpoint=http://127.0.0.1:%d" % port],
        send)
    if got is not None:
        check(got == {"spans": {harness.TRACE_ID_HEX: ["agent-span"]},
                      "metrics": ["helm.e2e.requests"], "logs": ["hello from the agent"]},
              "agent and gateway: the backend got %r" % got)
        print("agent -> gateway -> backend: traces, metrics and logs delivered")
