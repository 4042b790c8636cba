#!/usr/bin/env bash
# Serves the same 4 KiB, 1 MiB and 256 MiB files from the app (release build, logged-in
# cookie, detail view /files/{id}/download) and from nginx as plain static files, in one run,
# with wrk; prints the app/nginx ratios and the app's peak RSS, then watches the app's RSS
# while curl downloads a 1 GiB file.
#
# Needs nginx and wrk (Debian packages: apt-get install nginx wrk); loopback only.
# Usage: bash bench/download.sh [SECONDS_PER_ROUND]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
app_port=${BENCH_APP_PORT:-18766}
nginx_port=${BENCH_NGINX_PORT:-18767}
for tool in nginx wrk curl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "bench/download.sh needs $tool (apt-get install nginx wrk curl)" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d "${TMPDIR:-/tmp}/private-media-bench.XXXXXX")
server_pid=""; nginx_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# BENCH_BIN: a binary built elsewhere (an older commit, to compare in the same run).
if [ -n "${BENCH_BIN:-}" ]; then bin=$BENCH_BIN; else cargo build --release --quiet; bin=target/release/private-media; fi

mkdir -p "$work/src"
head -c 4096 /dev/urandom > "$work/src/f4k.bin"
head -c $((1024 * 1024)) /dev/urandom > "$work/src/f1m.bin"
head -c $((256 * 1024 * 1024)) /dev/urandom > "$work/src/f256m.bin"
if [ -z "${BENCH_QUICK:-}" ]; then head -c $((1024 * 1024 * 1024)) /dev/urandom > "$work/src/f1g.bin"; else head -c 1024 /dev/urandom > "$work/src/f1g.bin"; fi

password="bench-password-$$"
PRIVATE_MEDIA_DATA_DIR="$work/data" \
PRIVATE_MEDIA_ADMIN_PASSWORD="$password" \
PRIVATE_MEDIA_UPLOAD__MAX_FILE_SIZE="2GiB" \
PRIVATE_MEDIA_UPLOAD__UPLOAD_TO="bench" \
PRIVATE_MEDIA_LOG=warn \
  "$bin" serve --bind "127.0.0.1:$app_port" &
server_pid=$!
base="http://127.0.0.1:$app_port"
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

jar="$work/cookies"
token() { curl -s -b "$jar" -c "$jar" "$base$1" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1; }
curl -s -b "$jar" -c "$jar" -o /dev/null \
  --data-urlencode "csrf_token=$(token /login)" \
  --data-urlencode "username=admin" --data-urlencode "password=$password" "$base/login"
cookie=$(awk '$6 == "private_media_session" { print $6 "=" $7 }' "$jar")
[ -n "$cookie" ] || { echo "login failed" >&2; exit 1; }

declare -A ids
for f in f4k f1m f256m f1g; do
  location=$(curl -s -b "$jar" -c "$jar" -o /dev/null -w '%{redirect_url}' \
    -F "csrf_token=$(token /admin/files/new)" -F "access=owner" \
    -F "file=@$work/src/$f.bin;type=application/octet-stream" "$base/admin/files")
  ids[$f]=${location##*/}
  [ ${#ids[$f]} -eq 32 ] || { echo "upload of $f failed: $location" >&2; exit 1; }
done

mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        location /static/ { alias $work/src/; }
    }
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$nginx_port/static/f4k.bin" && break; sleep 0.1; done

# Sanity: the app answers the detail view with the right bytes.
for f in f4k f1m; do
  curl -sf -H "Cookie: $cookie" "$base/files/${ids[$f]}/download" | cmp -s - "$work/src/$f.bin" \
    || { echo "the app served wrong bytes for $f" >&2; exit 1; }
done

rps() { # url connections [cookie]
  local out
  if [ -n "${3:-}" ]; then
    out=$(wrk -t2 -c"$2" -d"${secs}s" -H "Cookie: $3" "$1")
  else
    out=$(wrk -t2 -c"$2" -d"${secs}s" "$1")
  fi
  if echo "$out" | grep -q "Non-2xx"; then echo "non-2xx answers from $1" >&2; echo "$out" >&2; exit 1; fi
  echo "$out" | awk '/Requests\/sec/ { print $2 }'
}

printf '\n%-8s %14s %14s %8s %8s\n' size "app req/s" "nginx req/s" ratio target
row() { # name app nginx unit target
  awk -v n="$1" -v a="$2" -v g="$3" -v u="$4" -v t="$5" \
    'BEGIN { printf "%-8s %12.1f %s %12.1f %s %8.2f %8s\n", n, a * u, (u == 1 ? "  " : "MB"), g * u, (u == 1 ? "  " : "MB"), a / g, ">= " t }'
}
a=$(rps "$base/files/${ids[f4k]}/download" 32 "$cookie")
g=$(rps "http://127.0.0.1:$nginx_port/static/f4k.bin" 32)
row 4KiB "$a" "$g" 1 0.30
a=$(rps "$base/files/${ids[f1m]}/download" 8 "$cookie")
g=$(rps "http://127.0.0.1:$nginx_port/static/f1m.bin" 8)
row 1MiB "$a" "$g" 1 0.80
a=$(rps "$base/files/${ids[f256m]}/download" 2 "$cookie")
g=$(rps "http://127.0.0.1:$nginx_port/static/f256m.bin" 2)
row 256MiB "$a" "$g" 256 0.90
echo "(256MiB row: MiB/s, from requests/s × 256)"

peak_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$server_pid/status")
echo
echo "app peak RSS after the runs: $((peak_kib / 1024)) MiB (target < 40 MiB)"

# RSS while one 1 GiB download runs: sampled every 100 ms.
samples="$work/rss"
curl -s -H "Cookie: $cookie" -o /dev/null -w '%{speed_download}\n' \
  "$base/files/${ids[f1g]}/download" > "$work/speed" &
curl_pid=$!
while kill -0 "$curl_pid" 2>/dev/null; do
  awk '/VmRSS/ { print $2 }' "/proc/$server_pid/status" >> "$samples"
  sleep 0.1
done
wait "$curl_pid"
awk -v speed="$(cat "$work/speed")" '
  NR == 1 || $1 < min { min = $1 } $1 > max { max = $1 }
  END { printf "1 GiB download: %.0f MiB/s; app RSS during it: %.1f to %.1f MiB over %d samples\n",
        speed / 1048576, min / 1024, max / 1024, NR }' "$samples"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r)"
