#!/usr/bin/env bash
# Download speed: the app (full access check) against a tuned nginx serving the same 4 KiB,
# 1 MiB and 256 MiB files as static files, and nginx in front of a second instance with
# `[delivery] server = "nginx"` (the app's check, nginx's sendfile). One run, targets
# interleaved in each round, medians of the per-round ratios; then a 4 KiB sweep over 1, 16, 64
# and 256 connections, and the app's RSS during a 1 GiB download and a 1 GiB upload.
# What the columns mean and the last results: bench/README.md.
#
# Installs nginx and wrk (Debian packages) when they are missing and it runs as root.
# Loopback only; bounded (wrk for fixed seconds, fixed sizes for curl).
# Usage: bash bench/download.sh [SECONDS_PER_RUN] [ROUNDS]   (defaults 10 and 3)
#        BENCH_BIN=path   measure that binary instead of building one
#        BENCH_QUICK=1    no sweep, no 1 GiB checks (a quick look while working)
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
rounds=${2:-3}
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench/download.sh needs ${missing[*]} (apt-get install ${missing[*]})" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The nginx package starts a system nginx on port 80; this script starts its own.
  /usr/sbin/nginx -s quit 2>/dev/null || true
fi
PATH="$PATH:/usr/sbin"

if [ -n "${BENCH_BIN:-}" ]; then bin=$BENCH_BIN; else cargo build --release --quiet; bin=target/release/private-media; fi
extra=()
[ -n "${BENCH_QUICK:-}" ] && extra+=(--no-sweep --no-gib)
# wrk -c256 and nginx's 4096 connections need descriptors.
ulimit -n 65536 2>/dev/null || true
exec python3 bench/download.py --bin "$bin" --seconds "$secs" --rounds "$rounds" "${extra[@]}"
