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
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

from helm_checks import check_case, check_common, check_readme
from helm_common import (FAILURES, HERE, NS, REPO, by_kind, check, config_of, die, docs_of,
                         example, merged_values, render, run, workload)
from helm_run import run_agent_gateway, run_two_tiers

GOLDEN = os.path.join(HERE, "golden")
BAD_VALUES = os.path.join(HERE, "values")



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
                want = f.read()
            diff = "".join(list(difflib.unified_diff(
                want.splitlines(True), r.stdout.splitlines(True), golden, "render"))[:40])
            check(want == r.stdout, "%s: render differs from %s (review the change, then "
                  "SWITCHYARD_UPDATE_GOLDEN=1 to update):\n%s" % (case, golden, diff))
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
