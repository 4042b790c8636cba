#!/usr/bin/env bash
# Soak test: one release instance on loopback, DURATION seconds of 1,000 concurrent
# connections mixing downloads (full and Range, bytes checked), logins (right passwords over
# several users; wrong ones for throwaway names from a second loopback address), uploads
# (SHA-256 of every body recorded) and slow clients (slow readers, slow upload bodies that are
# then abandoned, slowloris heads). Fails on any 5xx or wrong answer, any reset, refused or
# timed-out connection of a well-behaved client, any upload whose row or object does not
# match the bytes sent, any temp file left under private/.tmp/, any object without a row.
# Reports the server's peak and final RSS (sampled every 100 ms).
#
# The load driver is bench/soak.py (Python 3 standard library only). Bounded: every socket
# operation has a 30 s timeout, clients stop at the deadline, the driver gives up 45 s later,
# and `timeout` kills it if even that fails.
#
# Usage: bash bench/soak.sh [DURATION_SECONDS] [CONNECTIONS]   (defaults 60 and 1000)
# Environment: SOAK_PORT (18768), SOAK_MAX_RSS_MIB (fail above this peak RSS; default 300,
#              scaled up for more than 1,000 connections; 0: report only), SOAK_ONLY=KIND (only
#              the download, login, upload or slow clients of the mix), BENCH_BIN (a binary
#              to test instead of building one), SOAK_KEEP=1 (keep the data directory and
#              server log; kept anyway on failure).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-60}
connections=${2:-1000}
port=${SOAK_PORT:-18768}
# The full mix peaked at 191-229 MiB with 1,000 connections (bench/README.md): 300 leaves 30%
# for machines and runs that differ, and fails the 345 MiB the same mix reached before uploads
# and password hashes were bounded.
max_rss=${SOAK_MAX_RSS_MIB:-$(( connections > 1000 ? 300 * connections / 1000 : 300 ))}
for tool in curl python3 timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench/soak.sh needs $tool" >&2; exit 1; }
done

# 1,000 client sockets here and as many in the server (which inherits the limit).
want_fds=$((connections * 2 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
fds=$(ulimit -n)
if [ "$fds" != unlimited ] && [ "$fds" -lt "$want_fds" ]; then
  echo "warning: cannot raise the open-file limit to $want_fds (hard limit $(ulimit -Hn), now $fds);" \
       "expect EMFILE errors with $connections connections" >&2
fi
echo "open-file limit: $fds"

work=$(mktemp -d "${TMPDIR:-/tmp}/private-media-soak.XXXXXX")
server_pid=""; status=1
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" = 0 ] && [ -z "${SOAK_KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

# BENCH_BIN: a binary built elsewhere (an older commit, to compare in the same run).
if [ -n "${BENCH_BIN:-}" ]; then bin=$BENCH_BIN; else cargo build --release --quiet; bin=target/release/private-media; fi

password="soak-admin-$$-$RANDOM"
user_password="soak-user-$$-$RANDOM"
export PRIVATE_MEDIA_DATA_DIR="$work/data"
export PRIVATE_MEDIA_LOG=warn
PRIVATE_MEDIA_ADMIN_PASSWORD="$password" "$bin" serve --bind "127.0.0.1:$port" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

# Several users so that logins are spread over names (the throttle counts per name): at most
# 3 of the login clients (3% of the connections) share one.
login_users=(); staff_users=()
readers=$(( (connections * 3 / 100 + 2) / 3 )); [ "$readers" -ge 10 ] || readers=10
for i in $(seq 1 "$readers"); do
  printf '%s\n' "$user_password" | "$bin" user add "soak-reader-$i" --password-stdin >/dev/null
  login_users+=("soak-reader-$i")
done
for i in $(seq 1 4); do
  printf '%s\n' "$user_password" | "$bin" user add "soak-staff-$i" --staff --password-stdin >/dev/null
  staff_users+=("soak-staff-$i")
done

echo "soak: ${duration} s, $connections connections against pid $server_pid on 127.0.0.1:$port" \
     "(peak RSS bound: $( [ "$max_rss" = 0 ] && echo none || echo "$max_rss MiB"))"
driver_status=0
timeout --kill-after=10 "$(awk -v d="$duration" 'BEGIN { printf "%d", d + 240 }')" \
  python3 bench/soak.py --duration "$duration" --connections "$connections" --port "$port" \
    --pid "$server_pid" --data-dir "$work/data" --admin-password "$password" \
    --login-users "$(IFS=,; echo "${login_users[*]}")" --staff-users "$(IFS=,; echo "${staff_users[*]}")" \
    --user-password "$user_password" --max-rss-mib "$max_rss" \
    ${SOAK_ONLY:+--only "$SOAK_ONLY"} || driver_status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "FAIL: the server is gone" >&2; driver_status=1
fi
errors=$(grep -c -E ' (ERROR|WARN) | 5[0-9][0-9] ' "$work/server.log" || true)
if [ "$errors" -gt 0 ]; then
  echo "server log: $errors warning/error/5xx lines, the first ones:"
  grep -E ' (ERROR|WARN) | 5[0-9][0-9] ' "$work/server.log" | head -n 15
fi
status=$driver_status
exit "$status"
