"""Shared pieces of deploy.helm (tests/helm/test_helm.py): soft checks, running
the renderer, and reading its output. Python standard library and PyYAML."""
import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
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


def run(cmd, env=None, timeout=TIMEOUT, cwd=None):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=cwd)
    except FileNotFoundError as e:
        die("%s is not installed (%s); deploy/debian-deps.sh --test installs it" % (cmd[0], e))
    except subprocess.TimeoutExpired:
        die("%s took longer than %ds" % (" ".join(cmd), timeout))


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
