#!/usr/bin/env python3
"""The example plugins (examples/plugins) and the SDK's libraries, out of tree,
against the INSTALLED SDK (cmake --install --prefix TMP), as an author uses them:

- pkg-config (PKG_CONFIG_PATH=<prefix>/lib/pkgconfig only): the three plugins
  built with switchyard-plugin, their harness test with switchyard-plugintest and
  run; a processor using the helpers built with switchyard-helper;
- CMake (CMAKE_PREFIX_PATH=<prefix> only): examples/plugins configured, built
  and its ctest (the same harness test) run; the helper processor linked to
  Switchyard::helper;
- every .so exports only its entry; the installed binary lists them
  (`components`), validates the helper processor's own refusal, and runs
  udpline -> stamp -> unixsock on a configuration: UDP lines in, lines out of a
  Unix socket, checked line by line, then a clean SIGTERM stop.
"""
import argparse
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Router, free_port  # noqa: E402

check = Checks()

# The flags of the build type under test, for what is built here: the installed
# libraries of an Asan build are instrumented, so what links them must be too.
SAN = {"Asan": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"],
       "Tsan": ["-fsanitize=thread"]}
san_flags = []


def build_type(build_dir):
    with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
        for ln in f:
            if ln.startswith("CMAKE_BUILD_TYPE:"):
                return ln.split("=", 1)[1].strip()
    return ""


def run(cmd, env=None, timeout=120, cwd=None):
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout, cwd=cwd)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    return p.returncode, out


def pkgconf(env, *args):
    rc, out = run(["pkg-config", *args], env=env)
    if rc != 0:
        raise AssertionError("pkg-config %s failed: %s" % (" ".join(args), out))
    return out.split()


def exports_only_entry(so):
    rc, out = run(["nm", "-D", "--defined-only", so])
    syms = [ln.split()[-1] for ln in out.splitlines() if " T " in ln]
    return rc == 0 and syms == ["sy_plugin_entry"], syms


def build_pkgconfig(src, prefix, out):
    """The three plugins, the harness test and the helper processor with cc and
    pkg-config alone."""
    pcdir = glob.glob(os.path.join(prefix, "lib*", "pkgconfig"))[0]
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    env.pop("PKG_CONFIG_SYSROOT_DIR", None)
    plugin = pkgconf(env, "--cflags", "--libs", "switchyard-plugin")
    # libuv is the system's: the receiver and the exporter add it themselves.
    uv = pkgconf(env, "--cflags", "--libs", "libuv")
    ex = os.path.join(src, "examples", "plugins")
    cc = ["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"] + san_flags
    for name, path, extra in (("receiver_udpline", "udpline/udpline.c", uv),
                              ("processor_stamp", "stamp/stamp.c", []),
                              ("exporter_unixsock", "unixsock/unixsock.c", uv)):
        so = os.path.join(out, name + ".so")
        rc, log = run(cc + [os.path.join(ex, path)] + plugin + extra + ["-o", so])
        check(rc == 0, "pkg-config: %s builds (%s)" % (name, log.strip()[-600:]))
        ok, syms = exports_only_entry(so)
        check(ok, "pkg-config: %s exports only sy_plugin_entry (%s)" % (name, syms))
    pt = pkgconf(env, "--cflags", "--libs", "switchyard-plugintest")
    test = os.path.join(out, "test_examples")
    rc, log = run(cc + ['-DPLUGIN_DIR="%s"' % out, os.path.join(ex, "tests", "test_examples.c")]
                  + pt + ["-o", test])
    check(rc == 0, "pkg-config: the harness test builds with switchyard-plugintest (%s)"
          % log.strip()[-600:])
    if rc == 0:
        rc, log = run([test], timeout=60)
        check(rc == 0 and "all checks passed" in log,
              "pkg-config: the harness test passes on the pkg-config builds (%s)" % log[-2000:])
    helper = pkgconf(env, "--cflags", "--libs", "switchyard-plugin", "switchyard-helper")
    so = os.path.join(out, "processor_helperdemo.so")
    rc, log = run(cc + [os.path.join(src, "tests", "sdk", "helperdemo.c")] + helper + ["-o", so])
    check(rc == 0, "pkg-config: a plugin links switchyard-helper (%s)" % log.strip()[-600:])
    ok, syms = exports_only_entry(so)
    check(ok, "pkg-config: the helper plugin exports only sy_plugin_entry (%s)" % syms)


HELPER_CMAKE = """cmake_minimum_required(VERSION 3.20)
project(helperdemo C)
find_package(Switchyard 0.1 REQUIRED)
switchyard_add_plugin(NAME processor_helperdemo SOURCES %s LIBS Switchyard::helper)
"""


def build_cmake(src, proj, prefix, work):
    """The example project (as the guide writes it) with find_package(Switchyard),
    its ctest, and the helper processor with Switchyard::helper."""
    bdir = os.path.join(work, "build")
    common = ["-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_BUILD_TYPE=Release",
              "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"]
    if san_flags:
        f = " ".join(san_flags)
        common += ["-DCMAKE_C_FLAGS=" + f, "-DCMAKE_EXE_LINKER_FLAGS=" + f,
                   "-DCMAKE_MODULE_LINKER_FLAGS=" + f]
    rc, log = run(["cmake", "-S", proj, "-B", bdir] + common)
    check(rc == 0, "cmake: examples/plugins configures (%s)" % log.strip()[-800:])
    rc, log = run(["cmake", "--build", bdir, "-j2"], timeout=300)
    check(rc == 0, "cmake: examples/plugins builds (%s)" % log.strip()[-1500:])
    for name in ("receiver_udpline", "processor_stamp", "exporter_unixsock"):
        ok, syms = exports_only_entry(os.path.join(bdir, name + ".so"))
        check(ok, "cmake: %s exports only sy_plugin_entry (%s)" % (name, syms))
    rc, log = run(["ctest", "--test-dir", bdir, "--output-on-failure"], timeout=120)
    check(rc == 0 and "100% tests passed" in log,
          "cmake: the examples' harness test passes (%s)" % log.strip()[-2000:])
    hsrc = os.path.join(work, "helper")
    os.makedirs(hsrc)
    with open(os.path.join(hsrc, "CMakeLists.txt"), "w") as f:
        f.write(HELPER_CMAKE % os.path.join(src, "tests", "sdk", "helperdemo.c"))
    hb = os.path.join(work, "helper-build")
    rc, log = run(["cmake", "-S", hsrc, "-B", hb] + common)
    if rc == 0:
        rc, log = run(["cmake", "--build", hb], timeout=300)
    check(rc == 0 and os.path.exists(os.path.join(hb, "processor_helperdemo.so")),
          "cmake: a plugin links Switchyard::helper (%s)" % log.strip()[-1500:])
    return bdir


E2E = """receivers:
  udpline:
    endpoint: 127.0.0.1:%d
processors:
  stamp:
    key: via
    value: switchyard
    min_severity: 9
exporters:
  unixsock:
    path: %s
    reconnect_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:%d
  pipelines:
    logs:
      receivers: [udpline]
      processors: [stamp]
      exporters: [unixsock]
"""


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def e2e(binary, plugin_dir, work):
    """The installed binary: UDP lines -> stamp -> Unix socket, line by line."""
    path = os.path.join(work, "out.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(4)
    lsock.settimeout(10)
    port = free_udp_port()
    with Router(binary, [plugin_dir], E2E % (port, path, free_port())) as r:
        try:
            conn, _ = lsock.accept()
        except socket.timeout:
            check(False, "e2e: the exporter connects to the socket (%s)" % r.output()[-1500:])
            return
        conn.settimeout(0.2)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = []
        want = []
        for i in range(50):
            sev = ("DEBUG", "INFO", "WARN", "ERROR", "")[i % 5]
            body = "event %d | with a pipe" % i
            sent.append(("%s %s" % (sev, body)).strip() if sev else body)
            if sev in ("INFO", "WARN", "ERROR"):
                want.append("%s|event %d _ with a pipe|via=switchyard" % (sev, i))
        # Five datagrams of ten lines each.
        for k in range(0, 50, 10):
            udp.sendto(("\n".join(sent[k:k + 10]) + "\n").encode(), ("127.0.0.1", port))
            time.sleep(0.02)
        got = b""
        deadline = time.monotonic() + 15
        while got.count(b"\n") < len(want) and time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
            except socket.timeout:
                pass
        lines = got.decode().splitlines()
        check(len(lines) == len(want), "e2e: %d lines out of the socket (got %d)"
              % (len(want), len(lines)))
        for i, (g, w) in enumerate(zip(lines, want)):
            if g != w:
                check(False, "e2e: line %d is %r, want %r" % (i, g, w))
                break
        else:
            check(lines == want, "e2e: every line as sent, in order, DEBUG and unleveled dropped")
        rc = r.stop()
        check(rc == 0, "e2e: the router stops cleanly on SIGTERM (%s)" % rc)
        out = r.output()
        check("dropped" not in out, "e2e: no line was dropped (%s)" % out[-800:])
        conn.close()
    lsock.close()


def guide_blocks(src):
    """The ```c and ```cmake blocks of docs/plugin-guide.md with their line and
    info string."""
    blocks = []
    lines = open(os.path.join(src, "docs", "plugin-guide.md")).read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(c|cmake)\b(.*)$", lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j] != "```":
            j += 1
        blocks.append((i + 1, m.group(1), m.group(2).strip(), "\n".join(lines[i + 1:j]) + "\n"))
        i = j + 1
    return blocks


def code_lines(text):
    """The lines of a fragment that hold code: no blank, comment-only or elided
    ("...") ones, whitespace collapsed."""
    out = []
    for ln in text.split("\n"):
        t = " ".join(ln.split())
        if not t or "..." in t or t.startswith(("/*", "*", "//", "#include")):
            continue
        out.append(t)
    return out


def extract_guide(src, prefix, work):
    """Writes the guide's file= blocks into a project directory (the example
    project: blocks of its files must be those files, byte for byte, and the files
    the guide does not show are copied), builds the stand-alone ones with cc and
    pkg-config, and checks each fragment from=FILE line by line against FILE.
    Returns the project directory, which build_cmake() builds and tests."""
    proj = os.path.join(work, "guide-project")
    single = os.path.join(work, "guide-single")
    os.makedirs(single)
    shutil.copytree(os.path.join(src, "examples", "plugins"), proj)
    blocks = guide_blocks(src)
    check(len(blocks) >= 10, "the guide has its code blocks (%d)" % len(blocks))
    files = fragments = 0
    pcdir = glob.glob(os.path.join(prefix, "lib*", "pkgconfig"))[0]
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    for line, lang, info, body in blocks:
        m = re.match(r"file=(\S+)$", info)
        if m:
            files += 1
            name = m.group(1)
            target = os.path.join(proj, name)
            if os.path.exists(target):
                same = open(target).read() == body
                check(same, "guide line %d: file=%s is the example's %s byte for byte"
                      % (line, name, name))
                with open(target, "w") as f:  # what is built is the guide's text
                    f.write(body)
                continue
            path = os.path.join(single, name)
            with open(path, "w") as f:
                f.write(body)
            so = os.path.join(single, "processor_" + os.path.splitext(name)[0] + ".so")
            flags = pkgconf(env, "--cflags", "--libs", "switchyard-plugin")
            rc, log = run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", path] + flags
                          + san_flags + ["-o", so])
            check(rc == 0, "guide line %d: file=%s builds against the installed SDK (%s)"
                  % (line, name, log.strip()[-600:]))
            continue
        m = re.match(r"fragment(?: from=(\S+))?$", info)
        check(m is not None, "guide line %d: a %s block is marked file= or fragment (%r)"
              % (line, lang, info))
        if not m:
            continue
        fragments += 1
        if m.group(1):
            have = set(code_lines(open(os.path.join(src, m.group(1))).read()))
            missing = [ln for ln in code_lines(body) if ln not in have]
            check(not missing, "guide line %d: the fragment is in %s (not there: %s)"
                  % (line, m.group(1), missing[:3]))
    check(files >= 3, "the guide has whole files to build (%d)" % files)
    print("guide: %d file blocks, %d fragments" % (files, fragments))
    return proj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    for tool in ("cc", "pkg-config", "nm", "cmake", "ctest"):
        if not shutil.which(tool):
            print("FAIL: %s is needed for this test (deploy/debian-deps.sh installs it)" % tool)
            return 1
    san_flags.extend(SAN.get(build_type(args.build_dir), []))
    work = tempfile.mkdtemp(prefix="sy-sdk-ex-")
    try:
        prefix = os.path.join(work, "prefix")
        rc, log = run(["cmake", "--install", args.build_dir, "--prefix", prefix], timeout=120)
        check(rc == 0, "cmake --install into a temporary prefix (%s)" % log[-800:])
        for f in ("include/switchyard/plugintest.h", "include/switchyard/helper.h",
                  "include/switchyard/helper/exporterhelper.h",
                  "include/switchyard/helper/http_server.h",
                  "include/switchyard/helper/grpc_frame.h", "lib/libswitchyard-helper.a",
                  "lib/libswitchyard-plugintest.so", "lib/pkgconfig/switchyard-plugintest.pc",
                  "lib/pkgconfig/switchyard-helper.pc"):
            check(os.path.exists(os.path.join(prefix, f)), "installed: " + f)
        # The harness carries the core inside it, hidden: it exports sy_pt_* only.
        rc, out = run(["nm", "-D", "--defined-only",
                       os.path.join(prefix, "lib", "libswitchyard-plugintest.so")])
        syms = [ln.split()[-1] for ln in out.splitlines() if ln.strip()]
        others = [x for x in syms if not x.startswith("sy_pt_")]
        check(rc == 0 and len(syms) >= 20 and not others,
              "libswitchyard-plugintest.so exports sy_pt_* only (%d; others: %s)"
              % (len(syms), others[:5]))
        pcout = os.path.join(work, "pc")
        os.makedirs(pcout)
        build_pkgconfig(args.source_dir, prefix, pcout)
        proj = extract_guide(args.source_dir, prefix, work)
        build_cmake(args.source_dir, proj, prefix, os.path.join(work, "cmake"))
        binary = os.path.join(prefix, "bin", "switchyard")
        rc, out = run([binary, "components", "--plugin-dir", pcout])
        for name in ("receiver_udpline", "processor_stamp", "exporter_unixsock",
                      "processor_helperdemo"):
            check(os.path.join(pcout, name + ".so") in out,
                  "the installed binary lists %s (%s)" % (name, out[-400:]))
        cfg = os.path.join(work, "helper.yaml")
        for value, good in (("250m", True), ("soon", False)):
            with open(cfg, "w") as f:
                f.write("receivers:\n  udpline:\nprocessors:\n  helperdemo:\n"
                        "    grpc_timeout: %s\nexporters:\n  unixsock:\n    path: /tmp/x\n"
                        "service:\n  pipelines:\n    logs:\n      receivers: [udpline]\n"
                        "      processors: [helperdemo]\n      exporters: [unixsock]\n" % value)
            rc, out = run([binary, "validate", "--config", cfg, "--plugin-dir", pcout])
            if good:
                check(rc == 0, "validate accepts grpc_timeout %s (%s)" % (value, out[-400:]))
            else:
                check(rc != 0 and 'grpc_timeout "soon" is not a grpc-timeout value '
                      '(INVALID_ARGUMENT)' in out,
                      "the helper plugin's validate() refuses %s (%s)" % (value, out[-400:]))
        e2e(binary, pcout, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
