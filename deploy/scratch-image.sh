#!/usr/bin/env bash
# Builds a container image FROM scratch out of a Switchyard build tree, with
# podman and no registry (deploy/README.md): the binary, the plugins the default
# configuration needs (every plugin with --all), the shared libraries they link
# (found by ldd, with the dynamic loader), deploy/config.yaml as
# /etc/switchyard/config.yaml, CA certificates, and a passwd/group naming the
# non-root user switchyard (10001:10001) it runs as.
#
#   deploy/scratch-image.sh BUILD_DIR [TAG] [--all]
#   podman run --rm -p 4318:4318 -p 13133:13133 -p 8888:8888 switchyard:scratch
#
# The image is as portable as the build: its libraries are this machine's.
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR [TAG] [--all]" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
build=$(cd "$1" && pwd)
tag=${2:-localhost/switchyard:scratch}
all=no
[[ "${3:-}" == "--all" || "${2:-}" == "--all" ]] && all=yes
[[ "$tag" == "--all" ]] && tag=localhost/switchyard:scratch-all
src=$(cd "$(dirname "$0")/.." && pwd)
uid=10001
# What configs/default.yaml and deploy/config.yaml load (sy_tls.so is the otlp
# receiver's TLS layer, mapped only when a config asks for TLS).
default_plugins=(receiver_otlp.so sy_tls.so processor_memory_limiter.so processor_batch.so
  exporter_debug.so extension_health_check.so)

command -v podman >/dev/null || {
  echo "$0: podman is not installed (apt-get install podman)" >&2
  exit 1
}
ctx=$(mktemp -d /tmp/sy-scratch-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs

# The install tree, without the plugin SDK.
cmake --install "$build" --prefix "$root/usr" --strip >/dev/null
rm -rf "${root:?}/usr/include" "${root:?}/usr/share"
find "$root/usr" -depth -type d \( -name pkgconfig -o -name cmake \) -exec rm -rf {} +
plugdir=$(dirname "$(find "$root/usr" -name receiver_otlp.so -print -quit)")
if [[ "$all" == no ]]; then
  for f in "$plugdir"/*.so; do
    keep=no
    for p in "${default_plugins[@]}"; do [[ "$(basename "$f")" == "$p" ]] && keep=yes; done
    [[ "$keep" == yes ]] || rm -f "$f"
  done
fi

# The shared libraries every ELF file links, at the same paths as here.
copy_libs() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    [[ -e "$root$lib" ]] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
copy_libs "$root/usr/bin/switchyard"
for f in "$plugdir"/*.so; do copy_libs "$f"; done

mkdir -p "$root/etc/switchyard" "$root/etc/ssl/certs" "$root/tmp" "$ctx/state"
chmod 1777 "$root/tmp"
install -m 0644 "$src/deploy/config.yaml" "$root/etc/switchyard/config.yaml"
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nswitchyard:x:%d:%d:Switchyard:/var/lib/switchyard:/sbin/nologin\n' \
  "$uid" "$uid" >"$root/etc/passwd"
printf 'root:x:0:\nswitchyard:x:%d:\n' "$uid" >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

# The runtime settings (user, working directory, environment, ports, stop signal,
# command) are the Dockerfile's own, from its USER line to its end.
{
  printf 'FROM scratch\nARG UID=%d\nCOPY rootfs/ /\nCOPY --chown=%d:%d state/ /var/lib/switchyard/\n' \
    "$uid" "$uid" "$uid"
  sed -n '/^USER /,$p' "$src/deploy/Dockerfile"
} >"$ctx/Containerfile"
podman build --quiet --layers=false -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
echo "$tag"
