"""deploy.helm's expectations of a render: what every render must satisfy
(check_common), each case's own (check_case), and the README's values table."""
import hashlib
import json
import os

import yaml

from helm_common import check, config_of, container, one, workload


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
