#!/usr/bin/env bash
# Local stand-ins for the two base images the Dockerfile names, for machines
# that reach Debian's package mirror but no container registry:
#
#   debian:bookworm-slim   debootstrap (minbase) + slimming, `docker import`ed
#   rust:1-bookworm        (--rust) that image + gcc, libc6-dev, pkg-config,
#                          zlib1g-dev, ca-certificates, and the host's own Rust
#                          toolchain (rustup's active toolchain directory) under
#                          /usr/local/rust, cargo on PATH; nothing is downloaded
#                          from the Rust project. It trusts the host's CA bundle
#                          (/etc/ssl/certs/ca-certificates.crt), so cargo reaches
#                          crates.io wherever the host's cargo does
#
# With them the Dockerfile builds unchanged (`docker build .`); where the
# registry is reachable, do not run this script: `docker build` pulls the real
# images. An image of either name that did not come from this script (a
# pulled one has a registry digest) is never replaced; one this script made
# is kept unless --force.
#
# Usage: scripts/docker-base.sh [--rust] [--force]
# Needs: root, a running Docker daemon, debootstrap (apt-get install debootstrap).
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
#   VKW_DOCKER_WORK (scratch space, default target/docker-base).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf 'docker-base [%s]: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

RUST=0 FORCE=0
for a in "$@"; do
  case $a in
    --rust) RUST=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $a" ;;
  esac
done

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${VKW_DOCKER_WORK:-$ROOT/target/docker-base}
SUITE=bookworm
DEBIAN_TAG=debian:bookworm-slim
RUST_TAG=rust:1-bookworm
LOCAL_LABEL=org.vkwhisper.local-base

[ "$(id -u)" = 0 ] || die "debootstrap needs root"
docker info >/dev/null 2>&1 || die "no Docker daemon answers (start dockerd)"

# 0: build it; 1: keep it (present, made here and no --force, or pulled).
keep_image() { # tag
  docker image inspect "$1" >/dev/null 2>&1 || return 1
  local digests local_made
  digests=$(docker image inspect -f '{{len .RepoDigests}}' "$1")
  local_made=$(docker image inspect -f "{{index .Config.Labels \"$LOCAL_LABEL\"}}" "$1" 2>/dev/null || true)
  if [ "$digests" != 0 ] || [ -z "$local_made" ]; then
    log "$1 is present and did not come from this script: left as it is"
    return 0
  fi
  if [ $FORCE = 1 ]; then return 1; fi
  log "$1 is present (made by this script on $local_made): kept (--force rebuilds it)"
  return 0
}

# --- debian:bookworm-slim --------------------------------------------------
if ! keep_image "$DEBIAN_TAG"; then
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap)"
  ROOTFS=$WORK/rootfs
  rm -rf "$ROOTFS"
  mkdir -p "$WORK"
  t0=$(date +%s)
  log "debootstrap --variant=minbase $SUITE from $MIRROR (a minute or two)"
  debootstrap --variant=minbase --components=main "$SUITE" "$ROOTFS" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
  [ -L "$ROOTFS/bin" ] || log "warning: the rootfs is not merged-/usr (bookworm's images are)"

  # What makes an image "slim": no documentation, man pages or translations
  # from packages installed later, and apt keeps no caches or package lists in
  # image layers. Our own configuration, in the spirit of Debian's images.
  cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-container-slim" <<'EOF'
# Installed by vkwhisper's scripts/docker-base.sh: keep container images small.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$ROOTFS/etc/apt/apt.conf.d/01-container-clean" <<'EOF'
// Installed by vkwhisper's scripts/docker-base.sh: no package caches in image layers.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT::Install-Recommends "false";
APT::AutoRemove::SuggestsImportant "false";
EOF
  rm -f "$ROOTFS/etc/apt/sources.list"
  cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Remove what the already installed packages brought of the excluded paths,
  # and every cache, list and log; Docker supplies hostname, hosts, resolv.conf.
  find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$ROOTFS"/usr/share/{man,info,groff,lintian,linda}/*
  find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
    "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS"/root/.bash_history
  mkdir -p "$ROOTFS/var/cache/apt/archives/partial"
  : >"$ROOTFS/etc/hostname"
  : >"$ROOTFS/etc/resolv.conf"
  rm -f "$ROOTFS/etc/machine-id"; : >"$ROOTFS/etc/machine-id"

  made="$(date -u +%Y-%m-%dT%H:%M:%SZ) from $MIRROR"
  log "docker import → $DEBIAN_TAG"
  tar --numeric-owner --xattrs -C "$ROOTFS" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL $LOCAL_LABEL=\"$made\"" \
    - "$DEBIAN_TAG" >/dev/null
  rm -rf "$ROOTFS"
  log "$DEBIAN_TAG: $(docker image inspect -f '{{.Size}}' "$DEBIAN_TAG" | awk '{printf "%.0f MB", $1/1e6}') in $(( $(date +%s) - t0 )) s"
fi

# --- rust:1-bookworm ---------------------------------------------------------
if [ $RUST = 1 ] && ! keep_image "$RUST_TAG"; then
  command -v rustc >/dev/null 2>&1 || die "no Rust toolchain on this machine (rustup)"
  SYSROOT=$(rustc --print sysroot)
  HOST=$(rustc -vV | sed -n 's/^host: //p')
  [ -x "$SYSROOT/bin/cargo" ] || die "$SYSROOT has no cargo (a rustup toolchain directory is needed)"
  CTX=$WORK/rust-context
  rm -rf "$CTX"
  mkdir -p "$CTX/rust/lib/rustlib"
  # Hard links where the file system allows (no copy); without the docs
  # (share/) and other targets' standard libraries.
  for d in bin libexec etc; do
    [ -d "$SYSROOT/$d" ] && { cp -al "$SYSROOT/$d" "$CTX/rust/" 2>/dev/null || cp -a "$SYSROOT/$d" "$CTX/rust/"; }
  done
  for f in "$SYSROOT"/lib/*; do
    [ "$(basename "$f")" = rustlib ] && continue
    cp -al "$f" "$CTX/rust/lib/" 2>/dev/null || cp -a "$f" "$CTX/rust/lib/"
  done
  for f in "$SYSROOT"/lib/rustlib/*; do
    case $(basename "$f") in
      *-*-*) [ "$(basename "$f")" = "$HOST" ] || continue ;;
    esac
    cp -al "$f" "$CTX/rust/lib/rustlib/" 2>/dev/null || cp -a "$f" "$CTX/rust/lib/rustlib/"
  done
  # Trust what the host trusts: where outgoing TLS passes a proxy with a CA of
  # its own, cargo inside then reaches crates.io as the host's cargo does.
  cp /etc/ssl/certs/ca-certificates.crt "$CTX/host-ca-certificates.crt" 2>/dev/null \
    || : >"$CTX/host-ca-certificates.crt"
  version=$("$SYSROOT/bin/rustc" --version)
  cat >"$CTX/Dockerfile" <<EOF
FROM $DEBIAN_TAG
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config zlib1g-dev binutils \\
 && rm -rf /var/lib/apt/lists/*
COPY rust /usr/local/rust
COPY host-ca-certificates.crt /usr/local/share/host-ca-certificates.crt
RUN if [ -s /usr/local/share/host-ca-certificates.crt ]; then \
      cp /usr/local/share/host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt; fi
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version
LABEL $LOCAL_LABEL="$(date -u +%Y-%m-%dT%H:%M:%SZ) with the host's $version"
EOF
  t0=$(date +%s)
  log "building $RUST_TAG from $DEBIAN_TAG and $SYSROOT ($version)"
  # --network host: apt inside the build reaches the mirror as the host does.
  docker build --network host -q -t "$RUST_TAG" "$CTX" >/dev/null || die "docker build of $RUST_TAG failed"
  rm -rf "$CTX"
  log "$RUST_TAG: $(docker image inspect -f '{{.Size}}' "$RUST_TAG" | awk '{printf "%.0f MB", $1/1e6}') in $(( $(date +%s) - t0 )) s"
fi
