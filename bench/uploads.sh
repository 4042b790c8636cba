#!/usr/bin/env bash
# Concurrent uploads alone: CLIENTS curl loops, each uploading a 3 MiB file through the admin
# again and again for SECONDS, against one release instance on loopback. Prints the server's
# peak RSS (VmRSS sampled every 100 ms, and the kernel's VmHWM), its thread count and how many
# uploads went through. This is the part of the soak test that costs the most memory.
#
# Usage: bash bench/uploads.sh [CLIENTS] [SECONDS]   (defaults 70 and 30)
# Environment: BENCH_PORT (18769), UPLOAD_MIB (3).
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${1:-70}
secs=${2:-30}
port=${BENCH_PORT:-18769}
size_mib=${UPLOAD_MIB:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/private-media-bench.XXXXXX")
server_pid=""; loop_pids=()
cleanup() {
  # (A bare `wait` would wait for the server too.)
  if [ "${#loop_pids[@]}" -gt 0 ]; then
    kill "${loop_pids[@]}" 2>/dev/null || true
    wait "${loop_pids[@]}" 2>/dev/null || true
  fi
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# BENCH_BIN: a binary built elsewhere (an older commit, to compare in the same run).
if [ -n "${BENCH_BIN:-}" ]; then bin=$BENCH_BIN; else cargo build --release --quiet; bin=target/release/private-media; fi
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/source.bin"

password="bench-password-$$"
PRIVATE_MEDIA_DATA_DIR="$work/data" \
PRIVATE_MEDIA_ADMIN_PASSWORD="$password" \
PRIVATE_MEDIA_LOG=warn \
  "$bin" serve --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

jar="$work/cookies"
token() { curl -s -b "$jar" -c "$jar" "$base$1" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1; }
curl -s -b "$jar" -c "$jar" -o /dev/null \
  --data-urlencode "csrf_token=$(token /login)" \
  --data-urlencode "username=admin" --data-urlencode "password=$password" "$base/login"
csrf=$(token /admin/files/new)
[ -n "$csrf" ] || { echo "login failed" >&2; exit 1; }
rss_start=$(awk '/VmRSS/ { print $2 }' "/proc/$server_pid/status")

end=$(( $(date +%s) + secs ))
for c in $(seq 1 "$clients"); do
  (
    n=0
    while [ "$(date +%s)" -lt "$end" ]; do
      code=$(curl -s -b "$jar" -o /dev/null -w '%{http_code}' --max-time 60 \
        -F "csrf_token=$csrf" -F "access=owner" \
        -F "file=@$work/source.bin;filename=c$c-$n.bin;type=application/octet-stream" "$base/admin/files")
      echo "$code" >> "$work/codes.$c"
      n=$((n + 1))
    done
  ) &
  loop_pids+=($!)
done

peak=0; threads=0
while [ "$(date +%s)" -lt "$end" ] || kill -0 "${loop_pids[@]}" 2>/dev/null; do
  read -r rss thr < <(awk '/VmRSS/ { r = $2 } /Threads/ { t = $2 } END { print r, t }' "/proc/$server_pid/status")
  [ "$rss" -gt "$peak" ] && peak=$rss
  [ "$thr" -gt "$threads" ] && threads=$thr
  sleep 0.1
  [ "$(date +%s)" -gt $((end + 90)) ] && { echo "uploads still running 90 s after the end" >&2; exit 1; }
done
wait "${loop_pids[@]}" 2>/dev/null || true
loop_pids=()

hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$server_pid/status")
final=$(awk '/VmRSS/ { print $2 }' "/proc/$server_pid/status")
ok=$(cat "$work"/codes.* | grep -c '^303$' || true)
bad=$(cat "$work"/codes.* | grep -vc '^303$' || true)
awk -v c="$clients" -v s="$secs" -v m="$size_mib" -v ok="$ok" -v bad="$bad" -v a="$rss_start" \
    -v p="$peak" -v h="$hwm" -v f="$final" -v t="$threads" 'BEGIN {
  printf "%d clients x %d s of %d MiB uploads: %d stored (%.0f MiB/s), %d other answers\n", c, s, m, ok, ok * m / s, bad
  printf "server RSS: start %.1f MiB, peak %.1f MiB (VmHWM %.1f MiB), final %.1f MiB; threads peak %d\n", a / 1024, p / 1024, h / 1024, f / 1024, t
}'
[ "$bad" = 0 ] || { echo "FAIL: $bad uploads not answered 303" >&2; exit 1; }
