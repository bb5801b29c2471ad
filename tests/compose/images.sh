#!/usr/bin/env bash
# Makes, when missing, every image the compose test needs and no registry can give here:
#
#   debian:bookworm-slim          debootstrap --variant=minbase, then `docker import`
#   rust:1.95-slim-bookworm       stand-in: Debian's rustc-web/cargo-web + gcc (FROM docker/Dockerfile)
#   python:3.11-slim-bookworm     stand-in: Debian's python3 + pip + venv  (FROM docker/Dockerfile)
#   modelwatch-standin/*          stand-ins for the third-party services of docker-compose.yml
#                                 (tests/compose/docker-compose.standins.yml selects them)
#
# The first three carry exactly the names docker/Dockerfile's FROM lines use, so that file builds
# unchanged. Only the two build stand-ins trust the host's CA bundle (PyPI and crates.io answer
# over TLS); docker/Dockerfile never copies one. Images that exist are kept: later runs take
# seconds. MODELWATCH_REBUILD_STANDINS=1 makes them all again.
#
#   tests/compose/images.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[images] %s\n' "$*"; }
have() { [ "${MODELWATCH_REBUILD_STANDINS:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror apt already uses on this host (deb822 or one-line sources), else the default.
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1 || true)
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

make_debian_base() {
  have debian:bookworm-slim && return 0
  command -v debootstrap >/dev/null || { echo "debootstrap missing: run scripts/setup.sh" >&2; return 1; }
  local mirror root
  mirror=$(debian_mirror)
  root=$(mktemp -d /var/tmp/modelwatch-rootfs.XXXXXX)
  log "debian:bookworm-slim: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; rm -rf "$root" "$root.log"; return 1; }
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${mirror}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # As the official slim image: no docs, man pages, apt lists or cached packages.
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
         "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/var/log/*.log "$root"/tmp/* "$root"/dev/*
  tar -C "$root" --numeric-owner -c . \
    | docker import -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - debian:bookworm-slim >/dev/null
  rm -rf "$root" "$root.log"
  log "debian:bookworm-slim: $(docker image inspect -f '{{.Size}}' debian:bookworm-slim | awk '{printf "%.0f MB", $1/1e6}')"
}

# build_standin TAG DOCKERFILE [with-ca]: the Dockerfile's folder is the context (plus the CA bundle).
build_standin() {
  local tag=$1 dockerfile=$2 with_ca=${3:-} ctx
  have "$tag" && return 0
  ctx=$(mktemp -d)
  cp "$here/standins/"* "$ctx/"
  if [ "$with_ca" = with-ca ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-certificates.crt"
  fi
  log "$tag: building ($dockerfile)"
  local t0=$SECONDS
  docker build -q -t "$tag" -f "$ctx/$dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
  log "$tag: done in $(( SECONDS - t0 )) s"
}

make_debian_base
build_standin rust:1.95-slim-bookworm rust.Dockerfile with-ca
build_standin python:3.11-slim-bookworm python.Dockerfile with-ca
build_standin modelwatch-standin/prometheus:2.42 prometheus.Dockerfile
build_standin modelwatch-standin/alertmanager:0.25 alertmanager.Dockerfile
build_standin modelwatch-standin/nginx:1.22 nginx.Dockerfile
build_standin modelwatch-standin/mailpit:sink sinks.Dockerfile
