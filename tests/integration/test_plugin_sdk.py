#!/usr/bin/env python3
"""The plugin SDK's configuration contract through the real binary and loader
(ABI 1.3): field bounds and patterns refused by `switchyard validate` with
file:line:col, a 1.0-layout field table of a minor-2 plugin read right, a
descriptor whose offsets do not fit config_size refused with a sentence,
validate2() given the component's node (and the redaction processor's
db_sanitizer refusal caught at validate time), `components` printed as YAML
that parses and reads back every string, a newer-minor plugin warned about, and
"unknown type" naming the directories searched, and `components --schema` /
`--markdown` (a JSON Schema of every in-tree plugin that validates configs)."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks  # noqa: E402

check = Checks()

PIPE_HEAD = """receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  debug:
processors:
"""


def validate(args, tmp, name, processors_yaml, processors, dirs):
    """Writes a config whose processors section is processors_yaml (lines
    indented two spaces, starting on line 9) and runs `switchyard validate`."""
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(PIPE_HEAD + processors_yaml +
                "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
                "      processors: [%s]\n      exporters: [debug]\n" % ", ".join(processors))
    cmd = [args.bin, "validate", "--config", path]
    for d in dirs:
        cmd += ["--plugin-dir", d]
    p = subprocess.run(cmd, capture_output=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace"), path


def expect_refused(args, tmp, name, yml, procs, dirs, want):
    rc, out, path = validate(args, tmp, name, yml, procs, dirs)
    full = path + want if want.startswith(":") else want
    check(rc == 1 and full in out, "%s: refused with %r (rc %d: %s)"
          % (name, full, rc, out.strip()[-400:]))


def expect_ok(args, tmp, name, yml, procs, dirs):
    rc, out, _ = validate(args, tmp, name, yml, procs, dirs)
    check(rc == 0, "%s: accepted (rc %d: %s)" % (name, rc, out.strip()[-400:]))


def case_config(args, tmp):
    cfgabi = os.path.join(args.kit_dir, "cfgabi")
    plug = [args.plugin_dir]
    kit = [cfgabi, args.plugin_dir]
    # Bounds in an in-tree plugin's table (batch: 0 <= send_batch_size <= 2^32-1).
    expect_refused(args, tmp, "batch_min", "  batch:\n    send_batch_size: -1\n", ["batch"], plug,
                   ":10:22: 'batch.send_batch_size': must be at least 0, got \"-1\"")
    expect_refused(args, tmp, "batch_max",
                   "  batch:\n    send_batch_size: 10\n    send_batch_max_size: 4294967296\n",
                   ["batch"], plug,
                   ":11:26: 'batch.send_batch_max_size': must be at most 4294967295, "
                   "got \"4294967296\"")
    expect_ok(args, tmp, "batch_ok", "  batch:\n    send_batch_size: 4294967295\n", ["batch"], plug)
    # The batch processor's own validate() still runs after the table's checks.
    expect_refused(args, tmp, "batch_combo",
                   "  batch:\n    send_batch_size: 10\n    send_batch_max_size: 5\n", ["batch"],
                   plug, "send_batch_max_size must be greater or equal to send_batch_size")

    # A minor-2 plugin's table of the 1.0 layout: names, defaults and values land
    # where the plugin reads them (its validate() quotes both).
    expect_refused(args, tmp, "old_fill", "  cfgold:\n    limit: 101\n    label: abc\n",
                   ["cfgold"], kit, "'cfgold': limit 101 with label abc is over 100")
    expect_refused(args, tmp, "old_default", "  cfgold:\n    limit: 200\n", ["cfgold"], kit,
                   "'cfgold': limit 200 with label old is over 100")
    expect_refused(args, tmp, "old_unknown", "  cfgold:\n    limitt: 1\n", ["cfgold"], kit,
                   ":10:5: 'cfgold' has invalid keys: limitt")
    expect_ok(args, tmp, "old_ok", "  cfgold:\n    limit: 100\n    rules: [x]\n", ["cfgold"], kit)

    # min and pattern of a 1.3 table, with positions.
    expect_refused(args, tmp, "v2_min", "  cfgv2:\n    limit: -6\n", ["cfgv2"], kit,
                   ":10:12: 'cfgv2.limit': must be at least -5, got \"-6\"")
    expect_refused(args, tmp, "v2_pattern", "  cfgv2:\n    label: Abc\n", ["cfgv2"], kit,
                   ":10:12: 'cfgv2.label': \"Abc\" does not match the pattern [a-z]+")
    expect_refused(args, tmp, "v2_pattern_partial", "  cfgv2:\n    label: \"abc1\"\n", ["cfgv2"],
                   kit, ":10:12: 'cfgv2.label': \"abc1\" does not match the pattern [a-z]+")
    # validate2() gets the node and points at the element at fault.
    rc, out, path = validate(args, tmp, "v2_node",
                             "  cfgv2:\n    rules:\n      - fine\n      - forbidden\n",
                             ["cfgv2"], kit)
    check(rc == 1 and ("'cfgv2': %s:12:9: rules[1] is forbidden" % path) in out,
          "validate2 points at the element (rc %d: %s)" % (rc, out.strip()[-400:]))
    expect_ok(args, tmp, "v2_ok", "  cfgv2:\n    label: abc\n    rules: [fine]\n", ["cfgv2"], kit)
    # No settings at all: validate2 gets a NULL node, the plugin's own choice.
    rc, out, _ = validate(args, tmp, "v2_nonode", "  cfgv2:\n", ["cfgv2"], kit)
    check(rc == 1 and "validate2 was not given the component's node" in out,
          "validate2 with no settings gets NULL (rc %d: %s)" % (rc, out.strip()[-300:]))

    # A descriptor whose field lies past config_size: refused, naming plugin and field.
    rc, out, _ = validate(args, tmp, "badoffset", "  cfgbadoffset:\n", ["cfgbadoffset"], kit)
    check(rc == 1 and re.search(r"plugin \S+/processor_cfgbadoffset\.so: config field 'label' "
                                r"\(offset \d+, \d+ bytes\) does not fit in its config struct "
                                r"of config_size \d+ bytes", out) is not None,
          "offset past config_size refused (rc %d: %s)" % (rc, out.strip()[-400:]))

    # The redaction processor's db_sanitizer refusal, now at validate time, at
    # the position of db_sanitizer's value (line 12: the `sql:` map).
    rc, out, path = validate(args, tmp, "redaction",
                             "  redaction:\n    allow_all_keys: true\n"
                             "    db_sanitizer:\n      sql:\n        enabled: true\n",
                             ["redaction"], plug)
    check(rc == 1 and ("'redaction': %s:12:7: db_sanitizer is not supported" % path) in out,
          "validate refuses db_sanitizer at its position (rc %d: %s)"
          % (rc, out.strip()[-400:]))
    expect_ok(args, tmp, "redaction_off",
              "  redaction:\n    allow_all_keys: true\n"
              "    db_sanitizer:\n      sql:\n        enabled: false\n", ["redaction"], plug)

    # unknown type names the directories searched.
    rc, out, _ = validate(args, tmp, "unknown", "  nosuch:\n", ["nosuch"], kit)
    check(rc == 1 and "no processor_nosuch.so in the plugin path searched: %s, %s"
          % (cfgabi, args.plugin_dir) in out,
          "unknown type lists the directories searched (rc %d: %s)" % (rc, out.strip()[-500:]))


def case_components(args, tmp):
    dirs = [os.path.join(args.kit_dir, "cfgabi"), os.path.join(args.kit_dir, "abi")]
    cmd = [args.bin, "components"]
    for d in dirs:
        cmd += ["--plugin-dir", d]
    p = subprocess.run(cmd, capture_output=True, timeout=30)
    out = p.stdout.decode("utf-8")
    err = p.stderr.decode("utf-8", "replace")
    try:
        doc = yaml.safe_load(out)
    except yaml.YAMLError as e:
        check(False, "components prints valid YAML (%s):\n%s" % (e, out))
        return
    check(isinstance(doc, dict), "components prints a YAML map")
    check(doc["buildinfo"]["abi"] == "1.8", "buildinfo.abi is 1.8 (%r)" % doc["buildinfo"]["abi"])
    procs = {x["type"]: x for x in doc["processors"]}
    want = ("quotes \"q\", colon: yes\nnew line\ttab \\ backslash \x01 ctl \xff byte "
            "# no comment \x85 nel \x90 c1 caf\u00e9")  # NEL would fold if not escaped
    check(procs.get("cfgv2", {}).get("description") == want,
          "a description with quotes, colons, newlines, control and invalid bytes reads back "
          "(%r)" % procs.get("cfgv2", {}).get("description"))
    check(procs.get("cfgv2", {}).get("abi") == "1.8", "a plugin's abi is a string")
    wrong = procs.get("other") or procs.get("wrongtype", {})
    check("declares processor \"other\", but its file name says processor \"wrongtype\""
          in wrong.get("error", ""), "an error with quotes reads back (%r)" % wrong)
    check("cfgbadoffset" in procs and "does not fit" in procs["cfgbadoffset"].get("error", ""),
          "the bad descriptor is listed with its error")
    check(p.returncode == 1, "components exits 1 when a plugin does not load (%d)" % p.returncode)
    # A newer minor loads, with a warning on stderr (stdout stays YAML).
    check(procs.get("newminor", {}).get("abi") == "1.99" and "error" not in procs["newminor"],
          "the newer-minor plugin loads")
    check(re.search(r"processor_newminor\.so was built for plugin ABI 1\.99, newer than this "
                    r"switchyard \S+ \(ABI 1\.8\)", err) is not None,
          "a newer minor is warned about at load (%s)" % err.strip()[-300:])
    check("processor_oldminor.so" not in err, "an older minor loads without a warning")
    # ABI 1.5: a declared minimum host minor that is not met is refused, naming both.
    need = procs.get("needminor", {}).get("error", "")
    check(re.search(r"processor_needminor\.so needs a switchyard of plugin ABI 1\.99 or later "
                    r"\(its min_host_minor; built for ABI 1\.99\), but this switchyard \S+ "
                    r"has ABI 1\.8", need) is not None,
          "a plugin needing a newer host minor is refused with both versions (%r)" % need)
    check("error" not in procs.get("needmet", {"error": "absent"}),
          "a plugin whose minimum host minor is met loads")


def components(args, *extra, dirs=()):
    cmd = [args.bin, "components"]
    for d in dirs:
        cmd += ["--plugin-dir", d]
    p = subprocess.run(cmd + list(extra), capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def case_schema(args, tmp):
    import json
    import jsonschema
    rc, out, _ = components(args, dirs=[args.plugin_dir])
    listed = yaml.safe_load(out)
    n = 0
    for kind in ("receiver", "processor", "exporter", "extension"):
        for comp in listed.get(kind + "s") or []:
            rc, out, err = components(args, "--schema", "%s/%s" % (kind, comp["type"]),
                                      dirs=[args.plugin_dir])
            try:
                schema = json.loads(out)
                jsonschema.Draft202012Validator.check_schema(schema)
                ok = rc == 0 and schema["title"] == "%s %s" % (kind, comp["type"])
            except (ValueError, jsonschema.SchemaError) as e:
                ok = False
                err += str(e)
            check(ok, "--schema %s/%s is a valid JSON Schema (rc %d %s)"
                  % (kind, comp["type"], rc, err.strip()[-200:]))
            n += 1
    check(n >= 15, "every in-tree plugin has a schema (%d)" % n)

    rc, out, _ = components(args, "--schema", "processor/batch", dirs=[args.plugin_dir])
    batch = json.loads(out)
    want = {"x-switchyard-type": "int", "type": "integer", "minimum": 0,
            "maximum": 4294967295, "default": 8192,
            "description": "Number of items after which a batch is sent regardless of the "
                           "timeout. A trigger, not a cap: a batch may hold more. `0` sends on "
                           "the timeout only."}
    check(batch["properties"]["send_batch_size"] == want,
          "batch.send_batch_size in the schema (%s)" % batch["properties"]["send_batch_size"])
    check(batch["properties"]["timeout"]["default"] == "200ms"
          and batch["additionalProperties"] is False, "batch.timeout and no other keys")
    v = jsonschema.Draft202012Validator(batch)
    check(v.is_valid({"send_batch_size": 5, "timeout": "1s"}) and v.is_valid(None),
          "a good batch config validates against the schema")
    check(not v.is_valid({"send_batch_size": -1}) and not v.is_valid({"bogus": 1})
          and not v.is_valid({"send_batch_size": 4294967296}),
          "bad batch configs do not validate against the schema")
    # Dotted names are nested objects.
    rc, out, _ = components(args, "--schema", "receiver/otlp", dirs=[args.plugin_dir])
    otlp = json.loads(out)
    ep = otlp["properties"]["protocols"]["properties"]["http"]["properties"]["endpoint"]
    check(ep["type"] == "string" and ep["default"] == "localhost:4318",
          "receiver/otlp protocols.http.endpoint nested (%s)" % ep)
    # Patterns are anchored, enums listed.
    rc, out, _ = components(args, "--schema", "processor/cfgv2",
                            dirs=[os.path.join(args.kit_dir, "cfgabi")])
    v2 = json.loads(out)
    check(v2["properties"]["label"]["pattern"] == "^([a-z]+)$"
          and v2["properties"]["limit"]["minimum"] == -5, "cfgv2 pattern and minimum")
    rc, out, _ = components(args, "--schema", "exporter/debug", dirs=[args.plugin_dir])
    check(json.loads(out)["properties"]["verbosity"]["enum"] == ["basic", "normal", "detailed"],
          "debug.verbosity lists its values")
    # An ambiguous type and a missing one are usage errors with a sentence.
    rc, _, err = components(args, "--schema", "otlp", dirs=[args.plugin_dir])
    check(rc == 2 and "\"otlp\" is both receiver/otlp and exporter/otlp: give KIND/TYPE" in err,
          "an ambiguous type is refused (%d %s)" % (rc, err.strip()))
    rc, _, err = components(args, "--schema", "processor/nosuch", dirs=[args.plugin_dir])
    check(rc == 2 and "no plugin \"processor/nosuch\" on the plugin path" in err,
          "a missing type is refused (%d %s)" % (rc, err.strip()))
    # --markdown: the table a README shows.
    rc, out, _ = components(args, "--markdown", "processor/batch", dirs=[args.plugin_dir])
    lines = out.splitlines()
    check(rc == 0 and lines[:2] == ["| key | type | default | description |",
                                    "| --- | --- | --- | --- |"]
          and "| `send_batch_size` | int | `8192` | Number of items after which a batch is sent "
              "regardless of the timeout. A trigger, not a cap: a batch may hold more. `0` sends "
              "on the timeout only. (`0` to `4294967295`) |"
          in lines and len(lines) == 7, "--markdown processor/batch (%s)" % out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", required=True)
    ap.add_argument("--case", choices=["config", "components", "schema"], required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        {"config": case_config, "components": case_components,
         "schema": case_schema}[args.case](args, tmp)
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
