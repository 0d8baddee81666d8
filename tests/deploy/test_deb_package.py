#!/usr/bin/env python3
"""deploy.deb_package: the Debian package, built, installed, run and purged on this
machine (deploy/README.md).

1. `cpack` in the build tree writes switchyard_<version>_<arch>.deb; its control
   fields (Depends computed by dpkg-shlibdeps), conffiles and maintainer scripts
   are checked.
2. `dpkg -i`: the files are where they should be and `dpkg -L` lists them; the
   `switchyard` system user exists and owns /var/lib/switchyard; the config is
   root:switchyard 0640; the unit is enabled; `systemd-analyze verify` accepts the
   unit; its MemoryMax is above the config's memory_limiter; the installed binary
   finds the installed plugins with no flag and no environment.
3. The unit's ExecStart command line runs as the switchyard user (setpriv, with no
   capabilities and no_new_privs, as the unit does; systemd is not PID 1 here):
   once on a copy of /etc/switchyard/config.yaml moved to free ports, and once on
   the installed config as it is when its ports (4318, 13133, 8888) are free.
   OTLP/HTTP spans are accepted and arrive (the debug exporter's line and the own
   metrics on the telemetry port); SIGHUP reloads the configuration (counted in
   switchyard_config_reloads_total) and it keeps serving; SIGTERM stops it with
   exit code 0.
4. `dpkg --purge`: nothing of the package is left (files, /etc/switchyard,
   /var/lib/switchyard, the enable symlink, the user and the group).

The machine is left as it was, whatever fails (try/finally). Needs root, dpkg-dev
(dpkg-shlibdeps), file, adduser, util-linux (setpriv) and systemd (systemd-analyze);
it fails, never skips, without them.

    test_deb_package.py --build-dir build --source-dir .
"""
import argparse
import glob
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

from deploy_common import (Output, reload_with_sighup, run, send_and_check, verdict,
                           wait_exit, wait_ready)
from harness import Checks, free_port

PKG = "switchyard"
USER = "switchyard"
UNIT = "/lib/systemd/system/switchyard.service"
CONFIG = "/etc/switchyard/config.yaml"
STATE_DIR = "/var/lib/switchyard"
ENABLE_LINK = "/etc/systemd/system/multi-user.target.wants/switchyard.service"
DEFAULT_PORTS = (4318, 13133, 8888)
DPKG_LOCK_WAIT = 30.0
STOP_TIMEOUT = 20.0


def status():
    """dpkg's status of the package ("" when dpkg does not know it)."""
    p = run(["dpkg-query", "-W", "-f=${Status}", PKG], check=False)
    return p.stdout.strip() if p.returncode == 0 else ""


def installed():
    return status() == "install ok installed"


def known():
    """Anything of the package on this machine, even half installed or its
    configuration files only."""
    return status() != "" and not status().endswith(" not-installed")


def user_exists():
    try:
        pwd.getpwnam(USER)
        return True
    except KeyError:
        return False


def group_exists():
    try:
        grp.getgrnam(USER)
        return True
    except KeyError:
        return False


def dpkg(args):
    """dpkg with a bounded wait for the lock that apt on this machine may hold."""
    deadline = time.monotonic() + DPKG_LOCK_WAIT
    while True:
        p = run(["dpkg", *args], timeout=120, check=False)
        if p.returncode == 0 or "lock" not in p.stdout or time.monotonic() > deadline:
            return p
        time.sleep(1)


def preflight():
    """What must hold before anything is changed on this machine."""
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root: it installs and purges a package (dpkg -i)")
    for tool in ("cpack", "dpkg", "dpkg-deb", "dpkg-shlibdeps", "file", "adduser",
                 "setpriv", "systemd-analyze"):
        if not shutil.which(tool):
            problems.append("%s is missing (deploy/debian-deps.sh --test installs it)" % tool)
    if known():
        problems.append("the package %s is installed already; remove it first "
                        "(dpkg --purge %s)" % (PKG, PKG))
    for what, present in (("the user " + USER, user_exists()),
                          ("the group " + USER, group_exists()),
                          (CONFIG, os.path.exists(CONFIG)),
                          (STATE_DIR, os.path.exists(STATE_DIR))):
        if present:
            problems.append("%s exists already: this test would remove it" % what)
    return problems


def build_deb(build_dir, out_dir):
    run(["cpack", "-G", "DEB", "--config", os.path.join(build_dir, "CPackConfig.cmake"),
         "-B", out_dir], timeout=300)
    debs = glob.glob(os.path.join(out_dir, "%s_*.deb" % PKG))
    if len(debs) != 1:
        raise AssertionError("cpack wrote %r, not one %s_*.deb" % (debs, PKG))
    return debs[0]


def check_deb(check, deb):
    field = lambda name: run(["dpkg-deb", "-f", deb, name]).stdout.strip()  # noqa: E731
    check(field("Package") == PKG, "Package: %s" % field("Package"))
    depends = field("Depends")
    for dep in ("adduser", "libc6", "libuv1", "libyaml-0-2", "libcurl4"):
        check(re.search(r"(^|, )%s( |,|$)" % re.escape(dep), depends) is not None,
              "Depends names %s" % dep)
    check(re.search(r"libuv1 \(>= [0-9.]+\)", depends) is not None,
          "Depends has versions from dpkg-shlibdeps (%s)" % depends)
    control = run(["dpkg-deb", "-I", deb]).stdout
    for f in ("conffiles", "postinst", "prerm", "postrm"):
        check(re.search(r"\s%s\s" % f, control) is not None, "control member %s" % f)
    contents = run(["dpkg-deb", "-c", deb]).stdout
    for path in ("./usr/bin/switchyard", "./etc/switchyard/config.yaml",
                 "." + UNIT, "./usr/include/switchyard/plugin.h"):
        check((" %s\n" % path) in contents or contents.endswith(" " + path),
              "the package holds %s" % path)
    check("/usr/local" not in contents, "nothing under /usr/local")


def plugin_dir():
    dirs = glob.glob("/usr/lib/switchyard/plugins") + glob.glob("/usr/lib/*/switchyard/plugins")
    return dirs[0] if dirs else None


def check_installed(check, source_dir):
    listed = set(run(["dpkg", "-L", PKG]).stdout.split("\n"))
    pdir = plugin_dir()
    check(pdir is not None, "plugin directory %s" % pdir)
    wanted = ["/usr/bin/switchyard", CONFIG, UNIT, "/usr/include/switchyard/plugin.h"]
    if pdir:
        wanted += [os.path.join(pdir, n) for n in
                   ("receiver_otlp.so", "sy_tls.so", "processor_batch.so",
                    "processor_memory_limiter.so", "exporter_debug.so",
                    "extension_health_check.so")]
    for path in wanted:
        check(os.path.isfile(path) and path in listed, "%s installed and in dpkg -L" % path)
    pcs = [p for p in listed if p.endswith("/pkgconfig/switchyard-plugin.pc")]
    check(len(pcs) == 1 and os.path.isfile(pcs[0]), "switchyard-plugin.pc installed (%s)" % pcs)
    pc = run(["pkg-config", "--modversion", "switchyard-plugin"], check=False)
    version = run(["dpkg-query", "-W", "-f=${Version}", PKG]).stdout.strip()
    check(pc.returncode == 0 and pc.stdout.strip() == version,
          "pkg-config finds switchyard-plugin %s on its default path (%r)"
          % (version, pc.stdout.strip()))
    conf = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout
    check(CONFIG in conf, "%s is a conffile" % CONFIG)
    with open(os.path.join(source_dir, "deploy", "config.yaml"), "rb") as a, \
            open(CONFIG, "rb") as b:
        check(a.read() == b.read(), "%s is deploy/config.yaml" % CONFIG)

    check(user_exists() and group_exists(), "user and group %s exist" % USER)
    if user_exists():
        pw = pwd.getpwnam(USER)
        check(pw.pw_uid < 1000, "%s is a system user (uid %d)" % (USER, pw.pw_uid))
        check(pw.pw_shell in ("/usr/sbin/nologin", "/bin/false"), "no login shell (%s)"
              % pw.pw_shell)
        st = os.stat(STATE_DIR)
        check(st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o750,
              "%s owned by %s, mode 0750" % (STATE_DIR, USER))
        st = os.stat(CONFIG)
        check(st.st_uid == 0 and st.st_gid == pw.pw_gid and stat.S_IMODE(st.st_mode) == 0o640,
              "%s is root:%s 0640" % (CONFIG, USER))
    check(os.path.islink(ENABLE_LINK), "the unit is enabled (%s)" % ENABLE_LINK)

    v = run(["systemd-analyze", "verify", UNIT], check=False)
    check(v.returncode == 0 and not v.stdout.strip(),
          "systemd-analyze verify: clean (%r)" % v.stdout.strip())
    unit = open(UNIT).read()
    for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n",
                "User=%s" % USER, "ExecReload=/bin/kill -HUP $MAINPID"):
        check(key in unit, "unit has %s" % key.strip())
    mem = re.search(r"^MemoryMax=(\d+)M$", unit, re.M)
    lim = re.search(r"^\s+limit_mib: (\d+)$", open(CONFIG).read(), re.M)
    check(mem and lim and int(lim.group(1)) < int(mem.group(1)),
          "memory_limiter limit_mib (%s) below MemoryMax (%s MiB)"
          % (lim and lim.group(1), mem and mem.group(1)))

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    comp = run(["/usr/bin/switchyard", "components"], env=env)
    check(pdir is not None and os.path.join(pdir, "receiver_otlp.so") in comp.stdout,
          "the installed binary finds the installed plugins with no flag")


def exec_start():
    for line in open(UNIT):
        if line.startswith("ExecStart="):
            return shlex.split(line[len("ExecStart="):])
    raise AssertionError("no ExecStart in " + UNIT)


def router_env(host=None):
    """What the unit gives the router: a plain PATH and nothing else (sanitizer
    options pass through for the ASan run)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    if host:
        env["SWITCHYARD_LISTEN_HOST"] = host
    return env


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def run_service(check, work, name, config, ports, host=None, rounds=2):
    """Starts the unit's ExecStart as the switchyard user on config; sends spans,
    SIGHUP, more spans, then SIGTERM. ports = (otlp, health, metrics)."""
    argv = exec_start()
    argv[argv.index("--config") + 1] = config
    out_path = os.path.join(work, name + ".log")
    cmd = ["setpriv", "--reuid=" + USER, "--regid=" + USER, "--init-groups",
           "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--", *argv]
    print("%s: %s" % (name, " ".join(cmd)))
    with open(out_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=STATE_DIR, env=router_env(host), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    output = Output(out_path)
    base = "http://127.0.0.1:%d"
    otlp, health, metrics = (base % ports[0], base % ports[1] + "/",
                             base % ports[2] + "/metrics")
    try:
        wait_ready(output, health, lambda: proc.poll() is None)
        check(True, "%s: ready and healthy" % name)
        status = open("/proc/%d/status" % proc.pid).read()
        uid = pwd.getpwnam(USER).pw_uid
        check(re.search(r"^Uid:\s+%d\s+%d" % (uid, uid), status, re.M) is not None,
              "%s: runs as %s" % (name, USER))
        check(re.search(r"^NoNewPrivs:\s+1$", status, re.M) is not None and
              re.search(r"^CapBnd:\s+0+$", status, re.M) is not None,
              "%s: no_new_privs, no capabilities" % name)
        send_and_check(check, output, otlp, metrics, 3, name)
        if rounds > 1:
            reload_with_sighup(check, lambda: proc.send_signal(signal.SIGHUP),
                               lambda: proc.poll() is None, output, health, metrics)
            send_and_check(check, output, otlp, metrics, 2, name + "-after-hup")
        proc.send_signal(signal.SIGTERM)
        rc = wait_exit(proc, STOP_TIMEOUT)
        check(rc == 0, "%s: exit code %s after SIGTERM" % (name, rc))
    except AssertionError as e:
        check(False, "%s: %s" % (name, e))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if check.failures:
            print("---- %s output ----\n%s" % (name, output.text()[-6000:]), file=sys.stderr)


def run_services(check, work):
    # A copy of the installed configuration on free ports, listening on the host
    # given through SWITCHYARD_LISTEN_HOST as the container images do.
    ports = (free_port(), free_port(), free_port())
    text = open(CONFIG).read()
    for old, new in zip(DEFAULT_PORTS, ports):
        text, n = re.subn(r":%d\b" % old, ":%d" % new, text)
        check(n == 1, "port %d appears once in the config" % old)
    copy = os.path.join(work, "config.yaml")
    with open(copy, "w") as f:
        f.write(text)
    os.chmod(copy, 0o644)
    run_service(check, work, "free-ports", copy, ports, host="127.0.0.1")
    # The installed configuration as it is, when nothing else holds its ports.
    busy = [p for p in DEFAULT_PORTS if not port_free(p)]
    if busy:
        print("note: ports %s are in use here: the installed config as-is was not run"
              % busy)
    else:
        run_service(check, work, "as-installed", CONFIG, DEFAULT_PORTS, rounds=1)


def purge_and_check(check, listed):
    p = dpkg(["--purge", PKG])
    check(p.returncode == 0, "dpkg --purge (%s)" % p.stdout.strip()[-300:])
    check(not known(), "the package is gone (%r)" % status())
    left = [f for f in listed if f and os.path.isfile(f)]
    check(not left, "no file of the package is left (%s)" % left[:5])
    for path in ("/etc/switchyard", STATE_DIR, ENABLE_LINK,
                 "/etc/systemd/system/switchyard.service",
                 "/var/lib/systemd/deb-systemd-helper-enabled/switchyard.service.dsh-also",
                 "/var/lib/systemd/deb-systemd-helper-masked/switchyard.service"):
        check(not os.path.lexists(path), "%s is gone" % path)
    stray = []
    for top in ("/etc", "/var/lib/systemd", "/lib/systemd", "/var/lib/dpkg/info"):
        for d, dirs, files in os.walk(top):
            stray += [os.path.join(d, n) for n in dirs + files if "switchyard" in n]
    check(not stray, "nothing named switchyard under /etc, /lib/systemd, /var/lib/systemd "
          "or dpkg's info (%s)" % stray[:5])
    check(not user_exists() and not group_exists(), "user and group %s are gone" % USER)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    a = ap.parse_args()

    problems = preflight()
    if problems:
        for p in problems:
            print("FAIL " + p)
        return 1
    check = Checks()
    work = tempfile.mkdtemp(prefix="sy-deb-")
    os.chmod(work, 0o755)
    t0 = time.monotonic()
    listed = []
    try:
        deb = build_deb(os.path.abspath(a.build_dir), os.path.join(work, "out"))
        print("built %s (%.1fs, %d KiB)" % (os.path.basename(deb), time.monotonic() - t0,
                                             os.path.getsize(deb) // 1024))
        check_deb(check, deb)
        p = dpkg(["-i", deb])
        check(p.returncode == 0, "dpkg -i (%s)" % p.stdout.strip()[-500:])
        if installed():
            listed = run(["dpkg", "-L", PKG]).stdout.split("\n")
            check_installed(check, os.path.abspath(a.source_dir))
            run_services(check, work)
    except (AssertionError, OSError, subprocess.SubprocessError) as e:
        check(False, "unexpected: %s" % e)
    finally:
        if known() or user_exists():
            purge_and_check(check, listed)
        shutil.rmtree(work, ignore_errors=True)
    return verdict(check, t0)


if __name__ == "__main__":
    sys.exit(main())
