#!/usr/bin/env python3
"""deploy.helm: the Helm chart deploy/helm/switchyard, rendered without helm.

  test_helm.py --chart deploy/helm/switchyard --build-dir BUILD/helm
               --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

1. Builds tests/helm/render (Go text/template + Sprig from Debian, GOPATH mode)
   and installs tests/helm/node (npm ci, pinned) into the build tree.
2. Renders every case of CASES (each mode's defaults, the agent preset, the
   load-balancing tier, the tail-sampling tier behind it with a headless Service,
   a scaled gateway with HPA, PDB, ServiceMonitor and PodMonitor, config merges,
   alternateConfig), then for each render:
   - yamllint -s (tests/helm/yamllint.yaml);
   - every document against the Kubernetes schemas (kubernetes-models, and the
     prometheus-operator CRDs), and each values file against values.schema.json;
   - the switchyard config in the ConfigMap through `switchyard validate`;
   - the case's own checks, field by field (ports, probes, security context,
     checksum, memory_limiter from the memory limit, preset wiring...);
   - equal to tests/helm/golden/<case>.yaml.
3. Checks that a config change changes the checksum annotation, that a render is
   deterministic, that `required`/`fail` stop rendering with their message, and
   that values.schema.json refuses bad values.
4. Runs the examples' rendered configs as local routers, with only their
   addresses moved to free loopback ports: load-balancing tier -> sampling tier
   -> backend (only the traces the policies keep arrive, whole), and agent ->
   gateway -> backend (a span, a metric and a log record arrive).

Regenerate the golden renders after an intended chart change with
  SWITCHYARD_UPDATE_GOLDEN=1 ctest --test-dir build -R deploy.helm
(or the same variable with this script), then review `git diff tests/helm/golden`.

Fails (does not skip) when go, Sprig, sigs.k8s.io/yaml, yamllint, node or npm are
missing: deploy/debian-deps.sh --test installs them.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402  (free ports, the Router process wrapper, OTLP/JSON)
GOLDEN = os.path.join(HERE, "golden")
BAD_VALUES = os.path.join(HERE, "values")
NS = "observability"
TIMEOUT = 60

FAILURES = []


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        print("FAIL: " + msg, file=sys.stderr)
    return cond


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def example(name):
    return os.path.join(REPO, "deploy", "helm", "switchyard", "examples", name, "values.yaml")


# name -> (release, values files, --set list)
CASES = {
    "daemonset-defaults": ("switchyard", [], ["mode=daemonset"]),
    "deployment-defaults": ("switchyard", [], ["mode=deployment"]),
    "statefulset-defaults": ("switchyard", [], ["mode=statefulset"]),
    "agent": ("switchyard-agent", [example("agent")], []),
    "gateway": ("switchyard-gateway", [example("gateway")], []),
    "loadbalancing-tier": ("switchyard-lb", [example("loadbalancing-tier")], []),
    "sampling-tier": ("switchyard-sampler", [example("sampling-tier")], []),
    "config-merge": ("sy", [os.path.join(HERE, "values", "config-merge.yaml")], []),
    "alternate-config": ("sy", [os.path.join(HERE, "values", "alternate-config.yaml")], []),
    "pod-options": ("sy", [os.path.join(HERE, "values", "pod-options.yaml")], []),
    "statefulset-autoscaling": ("sy", [], [
        "presets.tailSampling.enabled=true", "presets.tailSampling.numTraces=1000000",
        "mode=statefulset", "autoscaling.enabled=true", "podDisruptionBudget.enabled=true",
        "ports.metrics.enabled=true", "podMonitor.enabled=true", "ports.zipkin.enabled=false",
        "resources.limits.memory=1G", "image.digest=sha256:" + "ab" * 32]),
}

# (what, values files, --set list, message expected on stderr)
REFUSALS = [
    ("no mode", [], [], "mode must be set: daemonset, deployment or statefulset"),
    ("bad mode", [], ["mode=replicaset"],
     'mode "replicaset" is not one of daemonset, deployment, statefulset'),
    ("agent without gateway", [], ["mode=daemonset", "presets.agent.enabled=true"],
     "presets.agent.gatewayEndpoint must be set"),
    ("loadbalancing without hostname", [], ["mode=deployment", "presets.loadBalancing.enabled=true"],
     "presets.loadBalancing.hostname must be set"),
    ("autoscaling a daemonset", [], ["mode=daemonset", "autoscaling.enabled=true"],
     "autoscaling is not available in daemonset mode"),
    ("serviceMonitor without metrics port", [], ["mode=deployment", "serviceMonitor.enabled=true"],
     "serviceMonitor needs ports.metrics.enabled and service.enabled"),
    ("existing ConfigMap without name", [], ["mode=deployment", "configMap.create=false"],
     "configMap.existingName must be set when configMap.create is false"),
    ("bad memory limit", [], ["mode=deployment", "resources.limits.memory=12parsecs"],
     'resources.limits.memory "12parsecs": expected a number with Ki, Mi, Gi'),
    ("exponent memory limit", [], ["mode=deployment", "resources.limits.memory=1e9"],
     'resources.limits.memory "1e9": expected a number with Ki, Mi, Gi'),
]

# bad values file -> a fragment of the schema error expected
SCHEMA_REFUSALS = {
    "bad-mode.yaml": "/mode must be equal to one of the allowed values",
    "bad-port.yaml": "/ports/otlp/containerPort must be <= 65535",
    "bad-unknown-key.yaml": "must NOT have additional properties",
    "bad-preset.yaml": "/presets/tailSampling/numTraces must be integer",
}


def run(cmd, env=None, timeout=TIMEOUT, cwd=None):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=cwd)
    except FileNotFoundError as e:
        die("%s is not installed (%s); deploy/debian-deps.sh --test installs it" % (cmd[0], e))
    except subprocess.TimeoutExpired:
        die("%s took longer than %ds" % (" ".join(cmd), timeout))


def build_renderer(build_dir):
    if not shutil.which("go"):
        die("go is not installed; deploy/debian-deps.sh --test installs golang-go, "
            "golang-github-masterminds-sprig-dev and golang-k8s-sigs-yaml-dev")
    for pkg in ("github.com/Masterminds/sprig", "sigs.k8s.io/yaml"):
        if not os.path.isdir(os.path.join("/usr/share/gocode/src", pkg)):
            die("Go package %s is missing from /usr/share/gocode; deploy/debian-deps.sh "
                "--test installs it" % pkg)
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
               GOCACHE=os.path.join(build_dir, "go-cache"), GOFLAGS="")
    out = os.path.join(build_dir, "helm-render")
    r = run(["go", "build", "-o", out, "."], env=env, cwd=os.path.join(HERE, "render"),
            timeout=300)
    if r.returncode != 0:
        die("building tests/helm/render failed:\n" + r.stderr)
    return out


def setup_node(node_dir):
    setup = os.path.join(REPO, "tests", "integration", "test_otel_js.py")
    r = subprocess.run([sys.executable, setup, "setup", "--src-dir", os.path.join(HERE, "node"),
                        "--node-dir", node_dir], timeout=320)
    if r.returncode != 0:
        die("npm ci for tests/helm/node failed")
    shutil.copyfile(os.path.join(HERE, "node", "check.mjs"), os.path.join(node_dir, "check.mjs"))


def render(renderer, chart, release, files, sets):
    cmd = [renderer, "--chart", chart, "--name", release, "--namespace", NS]
    for f in files:
        cmd += ["-f", f]
    for s in sets:
        cmd += ["--set", s]
    return run(cmd)


def docs_of(text):
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


def one(objs, kind, case):
    lst = objs.get(kind, [])
    check(len(lst) == 1, "%s: %d %s objects, expected 1" % (case, len(lst), kind))
    return lst[0] if lst else {}


def workload(objs):
    for kind in ("DaemonSet", "Deployment", "StatefulSet"):
        if kind in objs:
            return objs[kind][0]
    return {}


def container(objs):
    return workload(objs)["spec"]["template"]["spec"]["containers"][0]


def merged_values(chart, files, sets):
    """The values as Helm coalesces them, for the checks below (not for rendering)."""
    with open(os.path.join(chart, "values.yaml")) as f:
        values = yaml.safe_load(f)

    def merge(dst, src):
        for k, v in src.items():
            if v is None:
                dst.pop(k, None)
            elif isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v
    for fn in files:
        with open(fn) as f:
            merge(values, yaml.safe_load(f) or {})
    for s in sets:
        key, _, val = s.partition("=")
        node = {}
        cur = node
        parts = key.split(".")
        for p in parts[:-1]:
            cur[p] = {}
            cur = cur[p]
        cur[parts[-1]] = yaml.safe_load(val)
        merge(values, node)
    return values


def config_of(objs):
    cm = objs.get("ConfigMap", [{}])[0]
    return cm.get("data", {}).get("config.yaml", "")


def check_common(case, objs, values):
    """What every render must satisfy."""
    mode = values["mode"]
    kinds = {"daemonset": "DaemonSet", "deployment": "Deployment", "statefulset": "StatefulSet"}
    w = one(objs, kinds[mode], case)
    for other in set(kinds.values()) - {kinds[mode]}:
        check(other not in objs, "%s: a %s in mode %s" % (case, other, mode))
    pod = w["spec"]["template"]
    spec = pod["spec"]
    c = spec["containers"][0]
    check(w["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(),
          "%s: the selector does not match the pod labels" % case)
    # config checksum: sha256 of the config text, which the ConfigMap holds (+ "\n").
    cfg = config_of(objs)
    check(cfg.endswith("\n"), "%s: config.yaml does not end with a newline" % case)
    check(pod["metadata"]["annotations"]["checksum/config"] ==
          hashlib.sha256(cfg[:-1].encode()).hexdigest(),
          "%s: checksum/config is not the sha256 of the rendered config" % case)
    check(c["args"][:4] == ["--config", "/conf/config.yaml", "--plugin-dir",
                            values["command"]["pluginDir"]], "%s: args %r" % (case, c["args"]))
    check(c["command"] == ["/usr/bin/switchyard"], "%s: command %r" % (case, c["command"]))
    mount = [m for m in c["volumeMounts"] if m["name"] == "config"]
    vol = [v for v in spec["volumes"] if v["name"] == "config"]
    check(mount and mount[0]["mountPath"] == "/conf", "%s: config mount" % case)
    check(vol and vol[0]["configMap"]["name"] == objs["ConfigMap"][0]["metadata"]["name"],
          "%s: config volume does not name the ConfigMap" % case)
    # security: non-root, read-only root filesystem, nothing to escalate
    sc = c["securityContext"]
    check(sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True and
          sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"],
          "%s: container securityContext %r" % (case, sc))
    check(spec["securityContext"]["runAsNonRoot"] is True, "%s: pod securityContext" % case)
    # probes on health_check 13133
    for probe in ("livenessProbe", "readinessProbe"):
        check(c[probe]["httpGet"] == {"port": 13133, "path": "/"},
              "%s: %s %r" % (case, probe, c[probe]))
    # ports: exactly the enabled ones, on the container and the Service
    enabled = sorted(n for n, p in values["ports"].items() if p.get("enabled"))
    cports = {p["name"]: p for p in c.get("ports", [])}
    check(sorted(cports) == enabled, "%s: container ports %r, expected %r" %
          (case, sorted(cports), enabled))
    for name in enabled:
        p, want = cports.get(name, {}), values["ports"][name]
        check(p.get("containerPort") == want["containerPort"] and
              p.get("protocol") == want.get("protocol", "TCP"),
              "%s: container port %s %r" % (case, name, p))
        check(("hostPort" in p) == (mode == "daemonset" and "hostPort" in want),
              "%s: hostPort of %s in mode %s" % (case, name, mode))
    svc = one(objs, "Service", case)
    sports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(sorted(sports) == enabled, "%s: service ports %r" % (case, sorted(sports)))
    for name in enabled:
        check(sports[name]["port"] == values["ports"][name]["servicePort"] and
              sports[name]["targetPort"] == name, "%s: service port %s" % (case, name))
    check(svc["spec"]["selector"] == w["spec"]["selector"]["matchLabels"],
          "%s: service selector" % case)
    check(svc["spec"].get("internalTrafficPolicy") ==
          (values["service"]["internalTrafficPolicy"] or
           ("Local" if mode == "daemonset" else None)),
          "%s: internalTrafficPolicy %r" % (case, svc["spec"].get("internalTrafficPolicy")))
    headless = values["service"]["clusterIP"] == "None"
    check((svc["spec"].get("clusterIP") == "None") == headless, "%s: clusterIP" % case)
    if mode == "statefulset":
        check(w["spec"]["serviceName"] == svc["metadata"]["name"], "%s: serviceName" % case)
    if values["autoscaling"]["enabled"]:
        hpa = one(objs, "HorizontalPodAutoscaler", case)
        check(hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": w["kind"],
                                                "name": w["metadata"]["name"]},
              "%s: HPA target %r" % (case, hpa["spec"]["scaleTargetRef"]))
        check("replicas" not in w["spec"], "%s: replicas set beside an HPA" % case)
        check(hpa["spec"]["minReplicas"] == values["autoscaling"]["minReplicas"] and
              hpa["spec"]["maxReplicas"] == values["autoscaling"]["maxReplicas"],
              "%s: HPA bounds" % case)
    else:
        check("HorizontalPodAutoscaler" not in objs, "%s: an HPA when disabled" % case)
        if mode != "daemonset":
            check(w["spec"]["replicas"] == values["replicaCount"], "%s: replicas" % case)
    if values["podDisruptionBudget"]["enabled"]:
        pdb = one(objs, "PodDisruptionBudget", case)
        check(pdb["spec"]["selector"]["matchLabels"] == w["spec"]["selector"]["matchLabels"],
              "%s: PDB selector" % case)
    else:
        check("PodDisruptionBudget" not in objs, "%s: a PDB when disabled" % case)
    for kind, key in (("ServiceMonitor", "serviceMonitor"), ("PodMonitor", "podMonitor")):
        if values[key]["enabled"]:
            mon = one(objs, kind, case)
            eps = mon["spec"].get("endpoints") or mon["spec"].get("podMetricsEndpoints")
            check(eps[0]["port"] == "metrics" and "metrics" in cports,
                  "%s: %s port" % (case, kind))
            labels = svc["metadata"]["labels"] if kind == "ServiceMonitor" else \
                pod["metadata"]["labels"]
            check(mon["spec"]["selector"]["matchLabels"].items() <= labels.items(),
                  "%s: %s selects nothing" % (case, kind))
        else:
            check(kind not in objs, "%s: a %s when disabled" % (case, kind))
    # memory_limiter from the memory limit
    config = yaml.safe_load(cfg)
    mem = values.get("resources", {}).get("limits", {}).get("memory")
    ml = config.get("processors", {}).get("memory_limiter")
    if ml is not None:
        if mem:
            mib = mem_mib(mem)
            limit = int(mib * values["memoryLimiter"]["limitPercentage"] / 100)
            spike = int(limit * values["memoryLimiter"]["spikePercentage"] / 100)
            check(ml.get("limit_mib") == limit and ml.get("spike_limit_mib") == spike and
                  "limit_percentage" not in ml,
                  "%s: memory_limiter %r, expected limit_mib %d spike_limit_mib %d from %s" %
                  (case, ml, limit, spike, mem))
        else:
            check("limit_mib" not in ml, "%s: limit_mib without a memory limit" % case)
    return config


def mem_mib(q):
    if isinstance(q, (int, float)):
        return q / 2 ** 20
    units = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40,
             "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for u, m in units.items():
        if q.endswith(u):
            return float(q[:-len(u)]) * m / 2 ** 20
    return float(q) / 2 ** 20


def pipelines(config):
    return config["service"]["pipelines"]


def check_case(case, objs, config):
    """Each case's own expectations."""
    p = pipelines(config)
    if case.endswith("-defaults"):
        check(sorted(config["receivers"]) == ["jaeger", "otlp", "zipkin"],
              "%s: receivers %r" % (case, sorted(config["receivers"])))
        check(p["traces"] == {"receivers": ["otlp", "jaeger", "zipkin"],
                              "processors": ["memory_limiter", "batch"], "exporters": ["debug"]},
              "%s: traces pipeline %r" % (case, p["traces"]))
    if case == "agent":
        gw = config["exporters"]["otlp/gateway"]
        check(gw == {"endpoint": "switchyard-gateway.observability.svc.cluster.local:4317",
                     "compression": "gzip", "tls": {"insecure": True}},
              "agent: otlp/gateway %r" % gw)
        for sig in ("traces", "metrics", "logs"):
            check(p[sig]["exporters"] == ["otlp/gateway"], "agent: %s exporters %r" %
                  (sig, p[sig]["exporters"]))
    if case == "loadbalancing-tier":
        lb = config["exporters"]["loadbalancing"]
        check(lb["resolver"] == {"dns": {"hostname":
                                         "switchyard-sampler.observability.svc.cluster.local",
                                         "port": 4317, "interval": "5s", "timeout": "1s"}},
              "loadbalancing-tier: resolver %r" % lb["resolver"])
        check(lb["routing_key"] == "traceID", "loadbalancing-tier: routing_key")
        check(p["traces"]["exporters"] == ["loadbalancing"] and
              p["logs"]["exporters"] == ["loadbalancing"] and
              p["metrics"]["exporters"] == ["debug"],
              "loadbalancing-tier: pipelines %r" % p)
    if case == "sampling-tier":
        check(p["traces"]["processors"] == ["memory_limiter", "tail_sampling", "batch"],
              "sampling-tier: traces processors %r" % p["traces"]["processors"])
        ts = config["processors"]["tail_sampling"]
        check(ts["decision_wait"] == "10s" and ts["num_traces"] == 100000 and
              [x["name"] for x in ts["policies"]] == ["errors", "slow", "ten-percent"],
              "sampling-tier: tail_sampling %r" % ts)
        svc = objs["Service"][0]
        check(svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"],
              "sampling-tier: headless service %r" % svc["spec"])
    if case == "config-merge":
        # the user's keys merged over the defaults; null removed zipkin
        check("zipkin" not in config["receivers"] and "jaeger" in config["receivers"],
              "config-merge: receivers %r" % sorted(config["receivers"]))
        check(config["processors"]["batch"] == {"timeout": "2s", "send_batch_size": 4096},
              "config-merge: batch %r" % config["processors"]["batch"])
        check(config["receivers"]["otlp"]["protocols"]["grpc"] ==
              {"endpoint": "${env:MY_POD_IP}:4317", "max_recv_msg_size_mib": 16},
              "config-merge: otlp grpc %r" % config["receivers"]["otlp"]["protocols"]["grpc"])
        check(config["exporters"]["debug"] == {"verbosity": "detailed"},
              "config-merge: tpl did not render the exporter's verbosity")
        check(p["traces"]["receivers"] == ["otlp", "jaeger"], "config-merge: traces receivers")
    if case == "alternate-config":
        check(sorted(config["receivers"]) == ["otlp"] and
              sorted(config["exporters"]) == ["nop"], "alternate-config: %r" % config)
    if case == "pod-options":
        w = workload(objs)
        pod = w["spec"]["template"]
        spec, c = pod["spec"], container(objs)
        check(w["metadata"]["name"] == "sy-router" and c["name"] == "router" and
              w["metadata"]["annotations"] == {"team": "observability"},
              "pod-options: names and annotations %r" % w["metadata"])
        check(pod["metadata"]["labels"]["tier"] == "gateway" and
              pod["metadata"]["annotations"]["example.com/scrape"] == "false",
              "pod-options: pod labels and annotations")
        check(c["image"] == "switchyard/switchyard:0.2.0" and c["imagePullPolicy"] == "Always",
              "pod-options: image %r" % c["image"])
        check(c["args"][4:] == ["--shutdown-timeout", "20s"], "pod-options: extra args")
        check(spec["serviceAccountName"] == "telemetry" and
              objs["ServiceAccount"][0]["metadata"]["name"] == "telemetry",
              "pod-options: service account")
        check(c["env"][1] == {"name": "SWITCHYARD_QUEUE_BUDGET", "value": "64MiB"},
              "pod-options: extra env %r" % c["env"])
        check({"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"] and
              {"name": "tmp", "emptyDir": {}} in spec["volumes"], "pod-options: extra volume")
        check(spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet" and
              spec["priorityClassName"] == "system-cluster-critical" and
              spec["terminationGracePeriodSeconds"] == 45 and
              spec["nodeSelector"] == {"kubernetes.io/os": "linux"} and
              spec["tolerations"][0]["key"] == "dedicated" and
              "podAntiAffinity" in spec["affinity"] and
              spec["topologySpreadConstraints"][0]["maxSkew"] == 1 and
              spec["imagePullSecrets"] == [{"name": "registry"}],
              "pod-options: pod spec %r" % spec)
        check(w["spec"]["strategy"] == {"type": "Recreate"}, "pod-options: strategy")
        svc = objs["Service"][0]
        check([p.get("nodePort") for p in svc["spec"]["ports"] if p["name"] == "otlp"] ==
              [30317] and sum("nodePort" in p for p in svc["spec"]["ports"]) == 1,
              "pod-options: nodePort %r" % svc["spec"]["ports"])
        check(svc["spec"]["type"] == "LoadBalancer" and
              svc["metadata"]["annotations"] == {"example.com/lb": "internal"},
              "pod-options: service %r" % svc)
    if case == "statefulset-autoscaling":
        c = container(objs)
        check(c["image"] == "switchyard/switchyard@sha256:" + "ab" * 32, "image digest")
        # a large number stays an integer through toYaml (Helm: JSON first)
        check("num_traces: 1000000\n" in config_of(objs) and
              config["processors"]["tail_sampling"]["num_traces"] == 1000000,
              "statefulset-autoscaling: num_traces %r" %
              config["processors"]["tail_sampling"].get("num_traces"))


TABLE_START = "<!-- values table: generated by tests/helm/test_helm.py (SWITCHYARD_UPDATE_GOLDEN=1) -->\n"
TABLE_END = "<!-- end of values table -->\n"


def values_table(chart):
    """The README's table of every value: path, default (values.yaml), description."""
    with open(os.path.join(chart, "values.schema.json")) as f:
        schema = json.load(f)
    with open(os.path.join(chart, "values.yaml")) as f:
        defaults = yaml.safe_load(f)
    rows = []

    def default_of(path):
        d = defaults
        for p in path:
            if not isinstance(d, dict) or p not in d:
                return "—"
            d = d[p]
        text = "`%s`" % json.dumps(d, separators=(",", ":"))
        return "(see values.yaml)" if path == ["config"] or len(text) > 60 else text

    def walk(node, path):
        if node.get("type") == "object" and node.get("properties"):
            for k, sub in node["properties"].items():
                walk(sub, path + [k])
        elif path == ["ports"]:
            for k, sub in node["additionalProperties"]["properties"].items():
                rows.append(("ports.<name>." + k, "—", sub["description"]))
        else:
            rows.append((".".join(path), default_of(path), node["description"]))
    walk(schema, [])
    lines = ["| value | default | description |", "| --- | --- | --- |"]
    lines += ["| `%s` | %s | %s |" % (p, d, desc.replace("|", "\\|")) for p, d, desc in rows]
    return "\n".join(lines) + "\n"


def check_readme(chart, update):
    path = os.path.join(chart, "README.md")
    with open(path) as f:
        text = f.read()
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if not check(0 <= start < end, "README.md has no values table markers"):
        return
    want = values_table(chart)
    if update:
        with open(path, "w") as f:
            f.write(text[:start + len(TABLE_START)] + want + text[end:])
    else:
        check(text[start + len(TABLE_START):end] == want,
              "README.md's values table differs from values.schema.json / values.yaml "
              "(SWITCHYARD_UPDATE_GOLDEN=1 rewrites it)")


def validate_config(args, case, cfg, tmp):
    path = os.path.join(tmp, case + ".config.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    # MY_POD_IP is what the pod's env gives (status.podIP).
    env = dict(os.environ, MY_POD_IP="127.0.0.1")
    r = run([args.bin, "validate", "--config", path, "--plugin-dir", args.plugin_dir], env=env)
    check(r.returncode == 0, "%s: switchyard validate refused the rendered config:\n%s%s" %
          (case, r.stdout, r.stderr))
    check("warning" not in r.stderr, "%s: switchyard validate warns:\n%s" % (case, r.stderr))
    return r


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chart", default=os.path.join(REPO, "deploy", "helm", "switchyard"))
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()
    update = os.environ.get("SWITCHYARD_UPDATE_GOLDEN") == "1"
    args.build_dir = os.path.abspath(args.build_dir)
    os.makedirs(args.build_dir, exist_ok=True)
    if not shutil.which("yamllint"):
        die("yamllint is not installed; deploy/debian-deps.sh --test installs it")
    check_readme(args.chart, update)
    renderer = build_renderer(args.build_dir)
    node_dir = os.path.join(args.build_dir, "node")
    setup_node(node_dir)

    tmp = tempfile.mkdtemp(prefix="sy-helm-", dir=args.build_dir)
    rendered = {}
    value_files = [os.path.join(args.chart, "values.yaml")]
    for case, (release, files, sets) in CASES.items():
        r = render(renderer, args.chart, release, files, sets)
        if not check(r.returncode == 0, "%s: render failed: %s" % (case, r.stderr)):
            continue
        rendered[case] = r.stdout
        path = os.path.join(tmp, case + ".yaml")
        with open(path, "w") as f:
            f.write(r.stdout)
        value_files += [f for f in files if f not in value_files]
        values = merged_values(args.chart, files, sets)
        merged = os.path.join(tmp, case + ".values.yaml")
        with open(merged, "w") as f:
            yaml.safe_dump(values, f)
        value_files.append(merged)
        objs = by_kind(docs_of(r.stdout))
        config = check_common(case, objs, values)
        check_case(case, objs, config)
        validate_config(args, case, config_of(objs), tmp)
        golden = os.path.join(GOLDEN, case + ".yaml")
        if update:
            with open(golden, "w") as f:
                f.write(r.stdout)
        elif not os.path.exists(golden):
            check(False, "%s: no golden render %s (SWITCHYARD_UPDATE_GOLDEN=1 writes it)" %
                  (case, golden))
        else:
            with open(golden) as f:
                check(f.read() == r.stdout, "%s: render differs from %s (review the change, "
                      "then SWITCHYARD_UPDATE_GOLDEN=1 to update)" % (case, golden))
    print("rendered %d cases" % len(rendered))

    # the examples wire together: the agent's gateway endpoint is the gateway's
    # Service, the load-balancing tier resolves the sampling tier's headless Service
    def service_dns(case, port_name):
        svc = by_kind(docs_of(rendered.get(case, "")))["Service"][0]
        port = [p["port"] for p in svc["spec"]["ports"] if p["name"] == port_name][0]
        return "%s.%s.svc.cluster.local" % (svc["metadata"]["name"], NS), port
    if "agent" in rendered and "gateway" in rendered:
        host, port = service_dns("gateway", "otlp")
        agent = yaml.safe_load(config_of(by_kind(docs_of(rendered["agent"]))))
        check(agent["exporters"]["otlp/gateway"]["endpoint"] == "%s:%d" % (host, port),
              "the agent example does not send to the gateway example's Service")
    if "loadbalancing-tier" in rendered and "sampling-tier" in rendered:
        host, port = service_dns("sampling-tier", "otlp")
        lb = yaml.safe_load(config_of(by_kind(docs_of(rendered["loadbalancing-tier"]))))
        dns = lb["exporters"]["loadbalancing"]["resolver"]["dns"]
        check((dns["hostname"], dns["port"]) == (host, port),
              "the load-balancing example does not resolve the sampling tier's Service")

    # yamllint: every render, the chart's values and the examples
    conf = os.path.join(HERE, "yamllint.yaml")
    r = run(["yamllint", "-s", "-f", "parsable", "-c", conf] +
            [os.path.join(tmp, c + ".yaml") for c in rendered])
    check(r.returncode == 0, "yamllint (renders):\n" + r.stdout + r.stderr)
    # values files, as Helm users write them: without a leading "---"
    r = run(["yamllint", "-s", "-f", "parsable", "-d",
             "{extends: %s, rules: {document-start: disable}}" % conf] +
            [f for f in value_files if not f.startswith(tmp)])
    check(r.returncode == 0, "yamllint (values files):\n" + r.stdout + r.stderr)

    # Kubernetes schemas and values.schema.json
    bad = [os.path.join(BAD_VALUES, b) for b in sorted(SCHEMA_REFUSALS)]
    req = {"schema": os.path.join(args.chart, "values.schema.json"),
           "values": value_files + bad,
           "manifests": [os.path.join(tmp, c + ".yaml") for c in rendered]}
    req_path = os.path.join(tmp, "check.json")
    with open(req_path, "w") as f:
        json.dump(req, f)
    r = run(["node", os.path.join(node_dir, "check.mjs"), req_path], cwd=node_dir)
    if r.returncode != 0:
        die("check.mjs failed:\n" + r.stderr)
    res = json.loads(r.stdout)
    n_objs = 0
    for fn, results in res["manifests"].items():
        for o in results:
            n_objs += 1
            check(not o["errors"], "%s: %s %s fails the Kubernetes schema: %s" %
                  (os.path.basename(fn), o["kind"], o["name"], "; ".join(o["errors"])))
    kinds = sorted({o["kind"] for results in res["manifests"].values() for o in results})
    check(kinds == ["ConfigMap", "DaemonSet", "Deployment", "HorizontalPodAutoscaler",
                    "PodDisruptionBudget", "PodMonitor", "Service", "ServiceAccount",
                    "ServiceMonitor", "StatefulSet"], "kinds checked: %r" % kinds)
    for fn in value_files:
        check(res["values"][fn] == [], "%s fails values.schema.json: %s" %
              (fn, "; ".join(res["values"][fn])))
    for b in bad:
        errs = "; ".join(res["values"][b])
        want = SCHEMA_REFUSALS[os.path.basename(b)]
        check(want in errs, "%s: values.schema.json error %r, expected %r" %
              (os.path.basename(b), errs, want))
    print("schemas: %d objects of %d kinds, %d values files, %d refused as expected" %
          (n_objs, len(kinds), len(value_files), len(bad)))

    # a config change rolls the pods; the same values render the same
    base = ["mode=deployment"]
    a = render(renderer, args.chart, "sy", [], base).stdout
    a2 = render(renderer, args.chart, "sy", [], base).stdout
    b = render(renderer, args.chart, "sy", [], base + ["config.processors.batch.timeout=2s"]).stdout
    c = render(renderer, args.chart, "sy", [], base + ["replicaCount=3"]).stdout

    def checksum(text):
        return workload(by_kind(docs_of(text)))["spec"]["template"]["metadata"][
            "annotations"]["checksum/config"]
    check(a == a2, "two renders of the same values differ")
    check(checksum(a) != checksum(b), "a config change left checksum/config unchanged")
    check(checksum(a) == checksum(c), "a change outside config changed checksum/config")
    check("timeout: 2s" in config_of(by_kind(docs_of(b))), "the --set config change is missing")

    # required / fail stop rendering with their message
    for what, files, sets, msg in REFUSALS:
        r = render(renderer, args.chart, "sy", files, sets)
        check(r.returncode != 0 and msg in r.stderr,
              "%s: expected a failure with %r, got status %d: %s" %
              (what, msg, r.returncode, r.stderr.strip()[-300:]))
    print("%d refusals with their message" % len(REFUSALS))

    # the validate step sees a wrong key that the chart passes through
    r = render(renderer, args.chart, "sy", [], base + ["config.receivers.otlp.bogus=1"])
    path = os.path.join(tmp, "bogus.config.yaml")
    with open(path, "w") as f:
        f.write(config_of(by_kind(docs_of(r.stdout))))
    r = run([args.bin, "validate", "--config", path, "--plugin-dir", args.plugin_dir],
            env=dict(os.environ, MY_POD_IP="127.0.0.1"))
    check(r.returncode != 0 and "'otlp' has invalid keys: bogus" in r.stderr,
          "switchyard validate did not refuse config.receivers.otlp.bogus: %d %s" %
          (r.returncode, r.stderr))

    run_two_tiers(args, renderer, tmp)
    run_agent_gateway(args, renderer, tmp)

    shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d failures" % len(FAILURES), file=sys.stderr)
        return 1
    print("OK" + (" (golden renders rewritten)" if update else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
