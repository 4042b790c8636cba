#!/usr/bin/env bash
# Uploads a 1 GiB file through the admin with curl (release build, logged in as staff) and
# reports the server's peak RSS and throughput next to `dd` writing the same bytes.
#
# The app fsyncs every upload before it becomes visible, so dd runs with conv=fsync too.
# Usage: bash bench/upload.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${1:-1024}
port=${BENCH_PORT:-18765}
work=$(mktemp -d "${TMPDIR:-/tmp}/private-media-bench.XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# BENCH_BIN: a binary built elsewhere (an older commit, to compare in the same run).
if [ -n "${BENCH_BIN:-}" ]; then bin=$BENCH_BIN; else cargo build --release --quiet; bin=target/release/private-media; fi

echo "creating a ${size_mib} MiB source file…"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/source.bin"

password="bench-password-$$"
PRIVATE_MEDIA_DATA_DIR="$work/data" \
PRIVATE_MEDIA_ADMIN_PASSWORD="$password" \
PRIVATE_MEDIA_UPLOAD__MAX_FILE_SIZE="$((size_mib * 2))MiB" \
PRIVATE_MEDIA_LOG=warn \
  "$bin" serve --bind "127.0.0.1:$port" &
server_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

base="http://127.0.0.1:$port"
jar="$work/cookies"
token() { curl -s -b "$jar" -c "$jar" "$base$1" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1; }
curl -s -b "$jar" -c "$jar" -o /dev/null \
  --data-urlencode "csrf_token=$(token /login)" \
  --data-urlencode "username=admin" --data-urlencode "password=$password" "$base/login"

rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$server_pid/status"; }
rss_before=$(rss_kib)

upload_once() {
  local t
  t=$(curl -s -b "$jar" -c "$jar" -o /dev/null -w '%{http_code} %{time_total}' \
    -F "csrf_token=$(token /admin/files/new)" -F "access=owner" \
    -F "file=@$work/source.bin;filename=round$1.bin;type=application/octet-stream" "$base/admin/files")
  [ "${t%% *}" = "303" ] || { echo "upload failed: HTTP ${t%% *}" >&2; exit 1; }
  echo "${t#* }"
}
dd_once() {
  local start end
  start=$(date +%s.%N)
  dd if="$work/source.bin" of="$work/dd.out" bs=1M conv=fsync status=none
  end=$(date +%s.%N)
  rm -f "$work/dd.out"
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

best_app=""; best_dd=""
for round in 1 2 3; do
  a=$(upload_once "$round"); d=$(dd_once)
  printf 'round %d: app %.2f s, dd %.2f s\n' "$round" "$a" "$d"
  best_app=$(awk -v b="$best_app" -v x="$a" 'BEGIN { print (b == "" || x < b) ? x : b }')
  best_dd=$(awk -v b="$best_dd" -v x="$d" 'BEGIN { print (b == "" || x < b) ? x : b }')
  # Keep the disk from filling up: remove the stored copies between rounds.
  find "$work/data/private" -path "$work/data/private/.tmp" -prune -o -type f -name 'round*.bin' -exec rm -f {} +
done

rss_peak=$(rss_kib)
awk -v n="$size_mib" -v a="$best_app" -v d="$best_dd" -v peak="$rss_peak" -v before="$rss_before" 'BEGIN {
  printf "\nupload of %d MiB through the admin (best of 3):\n", n
  printf "  app: %.0f MiB/s   dd (conv=fsync): %.0f MiB/s   ratio app/dd: %.2f (target >= 0.70)\n", n / a, n / d, d / a
  printf "  server peak RSS: %.1f MiB (before uploads: %.1f MiB; target < 40 MiB)\n", peak / 1024, before / 1024
}'
