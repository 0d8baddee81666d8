#!/usr/bin/env bash
# Installs what Switchyard needs on Debian 12 (run as root, or through sudo).
#   deploy/debian-deps.sh          build and run
#   deploy/debian-deps.sh --test   also what the tests need (cmocka, python3, node,
#                                  clang for the fuzz targets and sanitizers)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

build_pkgs=(build-essential cmake pkg-config git ca-certificates
  libuv1-dev libyaml-dev libprotobuf-c-dev protobuf-c-compiler libyajl-dev
  zlib1g-dev libzstd-dev node-llhttp libnghttp2-dev libcurl4-openssl-dev libssl-dev libpcre2-dev)
test_pkgs=(libcmocka-dev python3 curl clang libclang-rt-14-dev prometheus)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${test_pkgs[@]}")
  # Node.js drives the OpenTelemetry JS SDK in the integration tests. Keep a newer
  # node that is already installed (the SDK needs >= 18.19; 20 is what we test).
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The jaeger receiver's tests generate a compact-protocol Thrift sender from the
# Jaeger IDL with Debian's thrift-compiler (tests/integration/test_jaeger.py).
if [[ "${1:-}" == "--test" ]] && ! dpkg-query -W -f='${Status}' thrift-compiler 2>/dev/null |
  grep -q "install ok installed"; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends thrift-compiler
fi

# integration.conn_guard frames HTTP/2 by hand with python3-h2 (and python3-hpack).
if [[ "${1:-}" == "--test" ]] &&
  ! dpkg-query -W -f='${Status}' python3-h2 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends python3-h2
fi

# Whole-buffer compression (plugins/common/compress.c): gzip/deflate through
# libdeflate, block snappy.
compress_missing=()
for p in libdeflate-dev libsnappy-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || compress_missing+=("$p")
done
if ((${#compress_missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${compress_missing[@]}"
fi

# integration.plugin_sdk.* parse `switchyard components` with PyYAML and check
# `components --schema` with jsonschema.
for p in python3-yaml python3-jsonschema; do
  if [[ "${1:-}" == "--test" ]] && ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
    grep -q "install ok installed"; then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "$p"
  fi
done

# integration.prometheus_receiver.* scrape Debian's node exporter and a target
# made with Debian's Python Prometheus client (OpenMetrics).
for p in prometheus-node-exporter python3-prometheus-client; do
  if [[ "${1:-}" == "--test" ]] && ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
    grep -q "install ok installed"; then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "$p"
  fi
done

# The basicauth extension checks bcrypt and SHA-crypt htpasswd entries with
# libxcrypt's crypt_rn() (crypt.h); libc6-dev usually brings it already.
if ! dpkg-query -W -f='${Status}' libcrypt-dev 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends libcrypt-dev
fi

# deploy.helm renders the Helm chart without helm: Go's text/template with Debian's
# Sprig and sigs.k8s.io/yaml, as Helm (GOPATH mode, tests/helm/render), and lints
# the renders.
helm_missing=()
for p in golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev yamllint; do
  if [[ "${1:-}" == "--test" ]] && ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
    grep -q "install ok installed"; then
    helm_missing+=("$p")
  fi
done
if ((${#helm_missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${helm_missing[@]}"
fi
# deploy.deb_package builds the package with cpack (dpkg-shlibdeps from dpkg-dev,
# and file, with which CPack finds the ELF files), installs and purges it (adduser)
# and verifies the unit (systemd-analyze, from systemd; systemd need not run);
# deploy.container builds and runs an image FROM scratch with podman, through runc
# (crun refuses hybrid cgroup v1 hosts).
pkg_missing=()
for p in dpkg-dev file adduser systemd podman runc; do
  if [[ "${1:-}" == "--test" ]] && ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
    grep -q "install ok installed"; then
    pkg_missing+=("$p")
  fi
done
if ((${#pkg_missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${pkg_missing[@]}"
fi

# integration.zpages loads the zpages extension's page in Debian's chromium,
# driven headless by playwright-core from npm (tests/integration/node_zpages).
if [[ "${1:-}" == "--test" ]] && ! dpkg-query -W -f='${Status}' chromium 2>/dev/null |
  grep -q "install ok installed"; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends chromium
fi
