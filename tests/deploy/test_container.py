#!/usr/bin/env python3
"""deploy.container: the container image FROM scratch that deploy/scratch-image.sh
assembles from the build tree, built and run with Debian's podman and no registry
(deploy/README.md).

1. deploy/scratch-image.sh builds the default image (the plugins deploy/config.yaml
   loads) and the --all image (every plugin of the build); `components` run in each
   lists exactly those plugins.
2. The default image runs as 10001:10001 with the default config, its ports 4318,
   13133 and 8888 published on free loopback ports: health answers, OTLP/HTTP spans
   are accepted and arrive (the debug exporter's line in `podman logs` and the own
   metrics), SIGHUP (`podman kill --signal HUP`) reloads the configuration and it
   keeps serving, `podman stop` ends it with exit code 0.
3. Container and images are removed whatever fails.

With --image (and --image-all) it checks images built elsewhere instead, e.g. from
deploy/Dockerfile where a registry serves its Debian base images, and leaves them.

On these machines podman needs runc (crun refuses the hybrid cgroup v1 layout) and
limits no higher than the caller's (root has no CAP_SYS_RESOURCE): the test passes
--runtime runc and --ulimit at the current limits. Needs root, podman and runc;
fails, never skips, without them.

    test_container.py --build-dir build --source-dir .
"""
import argparse
import glob
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

from deploy_common import (Output, reload_with_sighup, run, send_and_check, verdict,
                           wait_ready)
from harness import Checks, free_port

DEFAULT_PLUGINS = {"receiver/otlp", "processor/memory_limiter", "processor/batch",
                   "exporter/debug", "extension/health_check"}
UID = 10001
STOP_TIMEOUT = 20


def podman(*args, timeout=120, check=True):
    return run(["podman", "--runtime", "runc", *args], timeout=timeout, check=check)


def run_flags():
    """--ulimit no higher than the caller's: podman raises nofile (to 1048576) and
    nproc by default, which fails without CAP_SYS_RESOURCE. nproc counts the
    container user's processes (a handful); at the caller's own hard limit runc
    is still refused here, hence the cap."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 65536)
    nproc = 4096 if nproc == resource.RLIM_INFINITY else min(nproc, 4096)
    return ["--ulimit", "nofile=%d:%d" % (nofile, nofile),
            "--ulimit", "nproc=%d:%d" % (nproc, nproc)]


def listed_plugins(text):
    """kind/type of every plugin `switchyard components` lists."""
    found = set()
    kind = None
    for line in text.splitlines():
        m = re.match(r"^(receivers|processors|exporters|extensions|connectors):\s*$", line)
        if m:
            kind = m.group(1)[:-1]
            continue
        m = re.match(r'^\s+- type: "([a-z_0-9]+)"$', line)
        if kind and m:
            found.add("%s/%s" % (kind, m.group(1)))
    return found


class PodmanLogs(Output):
    def __init__(self, name):
        self.name = name

    def text(self):
        p = podman("logs", self.name, check=False, timeout=20)
        return p.stdout


def build_plugins(build_dir):
    files = glob.glob(os.path.join(build_dir, "lib", "**", "*_*.so"), recursive=True)
    out = set()
    for f in files:
        m = re.match(r"^(receiver|processor|exporter|extension|connector)_(.+)\.so$",
                     os.path.basename(f))
        if m and "/plugins/" in f:
            out.add("%s/%s" % m.groups())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--image", help="run these checks on an image built elsewhere (e.g. "
                    "from deploy/Dockerfile) instead of building the scratch images; "
                    "--image-all names its VARIANT=all build")
    ap.add_argument("--image-all")
    a = ap.parse_args()
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (podman with runc, rootful)")
    for tool in ("podman", "runc"):
        if not shutil.which(tool):
            problems.append("%s is missing (deploy/debian-deps.sh --test installs it)" % tool)
    if problems:
        for p in problems:
            print("FAIL " + p)
        return 1

    check = Checks()
    tag = a.image or "localhost/switchyard-test:%d" % os.getpid()
    tag_all = a.image_all or (None if a.image else tag + "-all")
    name = "switchyard-test-%d" % os.getpid()
    script = os.path.join(a.source_dir, "deploy", "scratch-image.sh")
    t0 = time.monotonic()
    logs = PodmanLogs(name)
    try:
        if not a.image:
            run([script, a.build_dir, tag], timeout=180)
            run([script, a.build_dir, tag_all, "--all"], timeout=180)
            print("images built in %.1fs" % (time.monotonic() - t0))
        info = json.loads(podman("image", "inspect", tag).stdout)[0]
        check(info["Config"].get("User") == "%d:%d" % (UID, UID),
              "image user %s" % info["Config"].get("User"))
        print("image size %.1f MiB" % (info["Size"] / 1048576))

        comps = podman("run", "--rm", "--network=none", *run_flags(), tag, "components").stdout
        got = listed_plugins(comps)
        check(got == DEFAULT_PLUGINS, "default image: plugins %s" % sorted(got))
        if tag_all:
            comps = podman("run", "--rm", "--network=none", *run_flags(), tag_all,
                           "components").stdout
            got, want = listed_plugins(comps), build_plugins(a.build_dir)
            check(got == want and len(want) > len(DEFAULT_PLUGINS),
                  "-all image: all %d plugins of the build (missing %s, extra %s)"
                  % (len(want), sorted(want - got), sorted(got - want)))

        ports = (free_port(), free_port(), free_port())
        pub = []
        for host, inner in zip(ports, (4318, 13133, 8888)):
            pub += ["-p", "127.0.0.1:%d:%d" % (host, inner)]
        podman("run", "-d", "--name", name, *run_flags(), *pub, tag)
        base = "http://127.0.0.1:%d"
        otlp, health, metrics = (base % ports[0], base % ports[1] + "/",
                                 base % ports[2] + "/metrics")

        def alive():
            p = podman("inspect", "-f", "{{.State.Running}}", name, check=False, timeout=20)
            return p.stdout.strip() == "true"
        wait_ready(logs, health, alive)
        check(True, "container ready and healthy")
        pid = podman("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
        status = open("/proc/%s/status" % pid).read()
        check(re.search(r"^Uid:\s+%d\s+%d" % (UID, UID), status, re.M) is not None,
              "the router runs as uid %d" % UID)
        send_and_check(check, logs, otlp, metrics, 3, "container")
        reload_with_sighup(check, lambda: podman("kill", "--signal", "HUP", name),
                           alive, logs, health, metrics)
        send_and_check(check, logs, otlp, metrics, 2, "container-after-hup")
        podman("stop", "-t", str(STOP_TIMEOUT), name, timeout=STOP_TIMEOUT + 30)
        code = podman("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
        check(code == "0", "exit code %s after podman stop (SIGTERM)" % code)
    except (AssertionError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        check(False, "unexpected: %s" % e)
    finally:
        if check.failures:
            print("---- container output ----\n%s" % logs.text()[-6000:], file=sys.stderr)
        podman("rm", "-f", name, check=False)
        if not a.image:
            podman("rmi", "-f", tag, tag_all, check=False)
    return verdict(check, t0)


if __name__ == "__main__":
    sys.exit(main())
