#!/usr/bin/env bash
# Scale-out on one machine: three `vkwhisper serve` replicas (processes on
# 127.0.0.1) behind Debian's nginx with deploy/nginx/vkwhisper-proxy.conf; a
# bounded load of uploads spreads over them (per-replica counts from
# /metrics), one replica is SIGKILLed mid-load and no request is lost (the
# client retries; nginx re-sends to another replica). With --measure, the
# same load against 1 and 3 replicas (run it on a quiet machine: it waits for
# the 1-minute load average to drop below --quiet-load, default 1.0).
#
#   bash scripts/scale-test.sh                      # the failover check (~1 min)
#   bash scripts/scale-test.sh --measure --json target/scale-test.json
#
# Options are scripts/scale_test.py's (--requests 36 --concurrency 6
# --rounds 2 --threads 0 …). Installs nginx with apt when missing (root);
# builds the binary (cargo, a no-op when fresh) unless VKW_BIN is set;
# fetches tiny.en into the cache. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'scale-test [%s]: %s\n' "$(date +%T)" "$*" >&2; }
export NODEVICE_SELECT=${NODEVICE_SELECT:-1}
if [ ! -x /usr/sbin/nginx ] && [ -z "${VKW_NGINX:-}" ]; then
  [ "$(id -u)" = 0 ] || { log "nginx is not installed (apt-get install nginx-light or nginx)"; exit 1; }
  log "installing nginx"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 nginx >/dev/null
fi
if [ -n "${VKW_BIN:-}" ]; then
  BIN=$VKW_BIN
else
  BIN=$PWD/target/release/vkwhisper
  log "building vkwhisper (cargo build --release -p vkwhisper-cli; a no-op when fresh)"
  cargo build --release -q -p vkwhisper-cli
fi
bash scripts/fetch-models.sh tiny.en
exec python3 scripts/scale_test.py --bin "$BIN" "$@"
