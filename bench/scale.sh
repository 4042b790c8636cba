#!/usr/bin/env bash
# Costs that must not grow with the data: the 4 KiB download rate with 1,000 and with
# 1,000,000 rows in the files table, and the admin list, a search and a deep page over
# 100,000 files (p95 of 40 sequential requests each). Rows are seeded straight into the
# SQLite file. Installs wrk (Debian package) when it is missing and it runs as root.
# Loopback only; bounded. Usage: bash bench/scale.sh [SECONDS_PER_RUN] [ROUNDS] (10, 3)
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
rounds=${2:-3}
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "bench/scale.sh needs wrk (apt-get install wrk)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
if [ -n "${BENCH_BIN:-}" ]; then bin=$BENCH_BIN; else cargo build --release --quiet; bin=target/release/private-media; fi
ulimit -n 65536 2>/dev/null || true
exec python3 bench/scale.py --bin "$bin" --seconds "$secs" --rounds "$rounds"
