#!/usr/bin/env python3
"""Checks (or with --update rewrites) the key tables of the plugin READMEs that
are generated from the plugins' field tables: every block between

    <!-- generated: switchyard components --markdown KIND/TYPE ... -->
    <!-- end of generated table -->

must be exactly what `switchyard components --markdown KIND/TYPE` prints for the
plugin built in this tree. A stale table fails with a diff and the command that
regenerates it."""
import argparse
import difflib
import glob
import os
import re
import subprocess
import sys

BEGIN = re.compile(r"^<!-- generated: switchyard components --markdown (\S+) .*-->$")
END = "<!-- end of generated table -->"


def generate(args, what):
    p = subprocess.run([args.bin, "components", "--plugin-dir", args.plugin_dir,
                        "--markdown", what], capture_output=True, timeout=30)
    if p.returncode != 0:
        sys.exit("switchyard components --markdown %s failed (%d): %s"
                 % (what, p.returncode, p.stderr.decode("utf-8", "replace")))
    return p.stdout.decode("utf-8").splitlines()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--update", action="store_true")
    args = ap.parse_args()
    blocks = stale = 0
    for readme in sorted(glob.glob(os.path.join(args.source_dir, "plugins", "*", "*",
                                                "README.md"))):
        with open(readme, encoding="utf-8") as f:
            lines = f.read().split("\n")
        out, i, changed = [], 0, False
        while i < len(lines):
            m = BEGIN.match(lines[i])
            out.append(lines[i])
            i += 1
            if not m:
                continue
            j = i
            while j < len(lines) and lines[j] != END:
                j += 1
            if j == len(lines):
                sys.exit("%s: '%s' has no '%s'" % (readme, lines[i - 1], END))
            blocks += 1
            want = generate(args, m.group(1))
            if lines[i:j] != want:
                stale += 1
                changed = True
                print("%s: the table of %s is stale; regenerate it with\n  %s --update\n%s"
                      % (readme, m.group(1), " ".join(sys.argv[:1] + [
                          "--bin", args.bin, "--plugin-dir", args.plugin_dir,
                          "--source-dir", args.source_dir]),
                         "\n".join(difflib.unified_diff(lines[i:j], want, "README", "generated",
                                                        lineterm=""))))
            out.extend(want)
            i = j
        if changed and args.update:
            with open(readme, "w", encoding="utf-8") as f:
                f.write("\n".join(out))
    print("%d generated table(s), %d stale" % (blocks, stale))
    if blocks == 0:
        sys.exit("no README holds a generated table")
    return 0 if stale == 0 or args.update else 1


if __name__ == "__main__":
    sys.exit(main())
