#!/usr/bin/env python3
"""Instructions per batch of the in-process benches, counted by callgrind.

Wall-clock figures on a shared machine are noisy; instruction counts are not.
Each row of bench/redaction_bench, bench/processor_bench and bench/probsampler_bench
is run under
`valgrind --tool=callgrind` twice, for --iterations A and B batches, and the
difference of the two totals divided by B - A is the cost of one batch (the
start-up, payload building and plugin loading cancel out).

    python3 bench/callgrind_per_batch.py --build-dir build [--small 8 --large 24]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROWS = [
    ("redaction_bench", 0, "baseline: copy + validate a batch"),
    ("redaction_bench", 1, "copy + validate + redaction (keys + card)"),
    ("processor_bench", 0, "baseline: copy + walk (as received)"),
    ("processor_bench", 1, "filter: 1 condition, attribute == string"),
    ("processor_bench", 2, "filter: 3 conditions (string, int, regex)"),
    ("processor_bench", 3, "transform: set one attribute"),
    ("processor_bench", 4, "transform: set, delete_key, replace_pattern, set where"),
    ("probsampler_bench", 0, "baseline: copy + validate a batch"),
    ("probsampler_bench", 2, "probabilistic_sampler hash_seed 10 %"),
    ("probsampler_bench", 3, "probabilistic_sampler hash_seed 100 % (rv and th on every span)"),
    ("probsampler_bench", 4, "probabilistic_sampler proportional 10 %"),
    ("processor_bench", 5, "transform: delete_key"),
    ("processor_bench", 6, "chain: transform delete_key, then filter 1 condition"),
]


def instructions(cmd):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        res = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + cmd,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
        if res.returncode != 0:
            sys.exit("failed: %s\n%s" % (" ".join(cmd), res.stderr[-2000:]))
        m = re.search(r"Collected : (\d+)", res.stderr)
        if not m:
            sys.exit("no instruction count from callgrind for %s" % " ".join(cmd))
        return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--small", type=int, default=8)
    ap.add_argument("--large", type=int, default=24)
    ap.add_argument("--bench", help="only rows of this bench")
    ap.add_argument("--probsampler-plugin",
                    help="the probabilistic_sampler .so probsampler_bench loads (another "
                         "build's, for an A/B of the plugin alone)")
    args = ap.parse_args()
    binary = os.path.join(args.build_dir, "bin")
    plugin = os.path.join(args.build_dir, "lib/switchyard/plugins/processor_redaction.so")
    print("| bench | row | instructions per batch | per span (512) |")
    print("| --- | --- | --- | --- |")
    for bench, row, name in ROWS:
        if args.bench and bench != args.bench:
            continue
        cmd = [os.path.join(binary, bench), "--row", str(row)]
        if bench == "redaction_bench":
            cmd += ["--plugin", plugin]
        if bench == "probsampler_bench":
            cmd += ["--plugin", args.probsampler_plugin or os.path.join(
                args.build_dir, "lib/switchyard/plugins/processor_probabilistic_sampler.so")]
        counts = [instructions(cmd + ["--iterations", str(n)]) for n in (args.small, args.large)]
        per = (counts[1] - counts[0]) / (args.large - args.small)
        print("| %s | %s | %.2f M | %.0f |" % (bench, name, per / 1e6, per / 512), flush=True)


if __name__ == "__main__":
    main()
