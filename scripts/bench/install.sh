#!/usr/bin/env bash
# What the proxy benchmark needs from Debian: wrk (load), nginx-light (origin), squid and tinyproxy (peers).
# proxy-chain comes from npm at run time, `proxy` (npm) from the workspace's devDependencies; the fixed-rate
# latency client is scripts/bench/load.ts's own (open loop), not hey (each hey worker waits for an answer
# before its next request, so a slow answer delays the requests behind it instead of counting against it).
set -euo pipefail
need=()
for cmd in wrk nginx squid tinyproxy; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
((${#need[@]})) || exit 0
pkgs=()
for cmd in "${need[@]}"; do [[ $cmd = nginx ]] && pkgs+=(nginx-light) || pkgs+=("$cmd"); done
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
# The Debian packages start their own services; the benchmark runs its own copies in the foreground.
for svc in nginx squid tinyproxy; do systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true; done
