#!/usr/bin/env python3
"""Download speed of the app against a tuned nginx serving the same files as static files.

Started by bench/download.sh (which builds the release binary and installs nginx and wrk when
they are missing). Everything runs on loopback and is bounded: wrk runs for fixed seconds, curl
downloads fixed sizes, every process is stopped at the end.

Targets, each measured in every round, interleaved (app, nginx, hand-over, app, nginx, ...):
  app       the app with `[delivery] server = "app"`: the full access check, then the bytes
  nginx     nginx serving the same files as plain static files (the reference)
  handover  nginx in front of a second app instance with `server = "nginx"`: the app's check,
            then nginx's `sendfile` through `X-Accel-Redirect`
  share     (4 KiB only) the app through a share link without a limit, no cookie
  quiet     (4 KiB only) a third instance, with its own data, and `[audit] enabled = false`:
            what the audit log costs the small downloads (app / quiet, target >= 0.90)
Ratios are app / nginx (and handover / nginx) per round; the table shows their medians.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

KIB = 1024
MIB = 1024 * KIB

NGINX_TUNED = """worker_processes auto;
daemon off;
{user}
error_log {work}/nginx/error.log warn;
pid {work}/nginx/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path {work}/nginx/body;
    proxy_temp_path {work}/nginx/proxy;
    fastcgi_temp_path {work}/nginx/fastcgi;
    uwsgi_temp_path {work}/nginx/uwsgi;
    scgi_temp_path {work}/nginx/scgi;
    upstream handover_app {{
        server 127.0.0.1:{handover_app_port};
        keepalive 64;
    }}
    # The reference: plain static files.
    server {{
        listen 127.0.0.1:{nginx_port};
        location /static/ {{ alias {work}/src/; }}
    }}
    # The hand-over: the app checks, nginx sends (README, "Running behind nginx").
    server {{
        listen 127.0.0.1:{handover_port};
        location / {{
            proxy_pass http://handover_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
        location /private-x-accel-redirect/ {{
            internal;
            alias {data}/private/;
            disable_symlinks on;
        }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not answer within {seconds} s")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class App:
    """One app instance on its own port."""

    def __init__(self, binary, data, password, port, extra_env, log):
        env = dict(os.environ)
        env.update(
            {
                "PRIVATE_MEDIA_DATA_DIR": data,
                "PRIVATE_MEDIA_ADMIN_PASSWORD": password,
                "PRIVATE_MEDIA_UPLOAD__MAX_FILE_SIZE": "2GiB",
                "PRIVATE_MEDIA_UPLOAD__UPLOAD_TO": "bench",
                "PRIVATE_MEDIA_LOG": "warn",
            }
        )
        env.update(extra_env)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [binary, "serve", "--bind", f"127.0.0.1:{port}"],
            env=env,
            stdout=log,
            stderr=log,
        )
        wait_for(self.base + "/healthz")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Browser:
    """A logged-in session, as a browser would hold it (urllib, no third-party modules)."""

    def __init__(self, base, password):
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )
        token = self.token("/login")
        self.post_form(
            "/login", {"csrf_token": token, "username": "admin", "password": password}
        )
        cookies = [c for c in self.jar if c.name == "private_media_session"]
        if not cookies:
            sys.exit("login failed")
        self.cookie = f"private_media_session={cookies[0].value}"

    def token(self, path):
        with self.opener.open(self.base + path) as r:
            page = r.read().decode()
        m = re.search(r'name="csrf_token" value="([^"]*)"', page)
        if not m:
            sys.exit(f"no csrf token on {path}")
        return m.group(1)

    def post_form(self, path, fields):
        data = urllib.parse.urlencode(fields).encode()
        try:
            self.opener.open(self.base + path, data=data)
        except urllib.error.HTTPError as e:
            if e.code != 303:
                raise

    def upload(self, path_on_disk):
        """Uploads with curl (streams the file; urllib would hold it in memory)."""
        token = self.token("/admin/files/new")
        out = subprocess.run(
            [
                "curl", "-s", "-o", "/dev/null", "-w", "%{redirect_url}",
                "-H", f"Cookie: {self.cookie}",
                "-F", f"csrf_token={token}", "-F", "access=owner",
                "-F", f"file=@{path_on_disk};type=application/octet-stream",
                self.base + "/admin/files",
            ],
            check=True, capture_output=True, text=True,
        ).stdout
        file_id = out.rsplit("/", 1)[-1]
        if len(file_id) != 32:
            sys.exit(f"upload of {path_on_disk} failed: {out!r}")
        return file_id


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wrk(url, connections, seconds, cookie=None):
    """req/s and p99 (ms) of `url` under wrk -t2."""
    # wrk wants at least one connection per thread.
    cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        sys.exit(f"wrk saw answers other than 2xx from {url}:\n{out}")
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        print(f"  ({url} at c{connections}: {errors.group(0)})", flush=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    value, unit = float(p99.group(1)), p99.group(2)
    p99_ms = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return rps, p99_ms


def curl_speeds(url, streams, cookie=None, repeat=1):
    """MiB/s of `streams` parallel downloads of `url` (all bytes over the wall time), the
    median of `repeat` tries."""
    results = []
    for _ in range(repeat):
        cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}\n"]
        if cookie:
            cmd += ["-H", f"Cookie: {cookie}"]
        start = time.monotonic()
        procs = [subprocess.Popen(cmd + [url], stdout=subprocess.PIPE, text=True) for _ in range(streams)]
        sizes = [int(p.communicate()[0].strip() or 0) for p in procs]
        elapsed = time.monotonic() - start
        results.append(sum(sizes) / MIB / elapsed)
    return statistics.median(results)


class RssSampler(threading.Thread):
    """Samples VmRSS of a process every 5 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.running = pid, [], True

    def run(self):
        while self.running:
            try:
                self.samples.append(status_kib(self.pid, "VmRSS"))
            except OSError:
                return
            time.sleep(0.005)

    def stop(self):
        self.running = False
        self.join()
        return self.samples


def reset_peak(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError as e:
        print(f"(cannot reset VmHWM: {e})")


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep-seconds", type=int, default=5)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-gib", action="store_true", help="skip the 1 GiB RSS checks")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="private-media-bench.", dir=os.environ.get("TMPDIR"))
    data = os.path.join(work, "data")
    src = os.path.join(work, "src")
    os.makedirs(src)
    os.makedirs(os.path.join(work, "nginx"))
    log = open(os.path.join(work, "server.log"), "w")
    sizes = {"4KiB": 4 * KIB, "1MiB": MIB, "256MiB": 256 * MIB}
    if not args.no_gib:
        sizes["1GiB"] = 1024 * MIB
    for name, size in sizes.items():
        with open(os.path.join(src, name), "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 4 * MIB))
                f.write(chunk)
                left -= len(chunk)

    password = f"bench-password-{os.getpid()}"
    ports = {k: free_port() for k in ("app", "handover_app", "nginx", "handover", "quiet")}
    apps, nginx = [], None
    try:
        app = App(args.bin, data, password, ports["app"], {}, log)
        apps.append(app)
        browser = Browser(app.base, password)
        ids = {name: browser.upload(os.path.join(src, name)) for name in sizes}
        # The second instance shares the database and the storage folder: nginx sends its files.
        handover_app = App(
            args.bin, data, password, ports["handover_app"],
            {"PRIVATE_MEDIA_DELIVERY__SERVER": "nginx"}, log,
        )
        apps.append(handover_app)
        # The audit log's cost: the same binary with it off, its own database and folder.
        quiet = App(
            args.bin, os.path.join(work, "quiet"), password, ports["quiet"],
            {"PRIVATE_MEDIA_AUDIT__ENABLED": "false"}, log,
        )
        apps.append(quiet)
        quiet_browser = Browser(quiet.base, password)
        quiet_url = f"{quiet.base}/files/{quiet_browser.upload(os.path.join(src, '4KiB'))}/download"
        user = "user root;" if os.getuid() == 0 else ""
        with open(os.path.join(work, "nginx", "nginx.conf"), "w") as f:
            f.write(NGINX_TUNED.format(
                user=user, work=work, data=data, nginx_port=ports["nginx"],
                handover_port=ports["handover"], handover_app_port=ports["handover_app"],
            ))
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = subprocess.Popen(
            [nginx_bin, "-p", os.path.join(work, "nginx"), "-c", os.path.join(work, "nginx", "nginx.conf")],
            stdout=log, stderr=log,
        )
        wait_for(f"http://127.0.0.1:{ports['nginx']}/static/4KiB")

        def url(target, name):
            if target == "app":
                return f"{app.base}/files/{ids[name]}/download"
            if target == "handover":
                return f"http://127.0.0.1:{ports['handover']}/files/{ids[name]}/download"
            return f"http://127.0.0.1:{ports['nginx']}/static/{name}"

        cookie = {"app": browser.cookie, "handover": browser.cookie, "nginx": None}
        # Every target serves the same bytes.
        for target in ("app", "handover", "nginx"):
            for name in ("4KiB", "1MiB"):
                req = urllib.request.Request(url(target, name))
                if cookie[target]:
                    req.add_header("Cookie", cookie[target])
                with urllib.request.urlopen(req) as r, open(os.path.join(src, name), "rb") as f:
                    if r.read() != f.read():
                        sys.exit(f"{target} served wrong bytes for {name}")

        # A share link without a limit to the 4 KiB file: the recipient's download, no cookie.
        file_page = f"/admin/files/{ids['4KiB']}"
        browser.post_form(f"{file_page}/links", {"csrf_token": browser.token(file_page), "expires_in": "1d"})
        with browser.opener.open(app.base + file_page) as r:
            found = re.search(r'id="new-link-url" type="text" readonly value="([^"]+)"', r.read().decode())
        if not found:
            sys.exit("making a share link failed")
        share_url = found.group(1) + "/download"

        targets = ("app", "nginx", "handover")
        reset_peak(app.proc.pid)
        rounds = []
        for r in range(args.rounds):
            fig = {}
            # Each round starts with another target, so none always runs first (or right
            # after the heaviest) in a test.
            order = targets[r % len(targets):] + targets[:r % len(targets)]
            for t in order:
                # The audit-off instance beside the app: after it in even rounds, before it
                # in odd ones.
                if t == "app" and r % 2:
                    fig[("4KiB", "quiet")] = wrk(quiet_url, 64, args.seconds, quiet_browser.cookie)
                fig[("4KiB", t)] = wrk(url(t, "4KiB"), 64, args.seconds, cookie[t])
                if t == "app" and not r % 2:
                    fig[("4KiB", "quiet")] = wrk(quiet_url, 64, args.seconds, quiet_browser.cookie)
            fig[("4KiB", "share")] = wrk(share_url, 64, args.seconds)
            for t in order:
                fig[("1MiB", t)] = wrk(url(t, "1MiB"), 64, args.seconds, cookie[t])
            for t in order:
                fig[("256MiB×1", t)] = curl_speeds(url(t, "256MiB"), 1, cookie[t], repeat=3)
            for t in order:
                fig[("256MiB×4", t)] = curl_speeds(url(t, "256MiB"), 4, cookie[t], repeat=2)
            rounds.append(fig)
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{k[0]} {k[1]} {v[0] if isinstance(v, tuple) else v:.0f}" for k, v in fig.items()
            ), flush=True)
        peak_mib = status_kib(app.proc.pid, "VmHWM") / 1024

        sweep = {}
        if not args.no_sweep:
            for conns in (1, 16, 64, 256):
                for t in targets:
                    sweep[(conns, t)] = wrk(url(t, "4KiB"), conns, args.sweep_seconds, cookie[t])

        gib = {}
        if not args.no_gib:
            # RSS during a 1 GiB download and a 1 GiB upload: flat means the range of samples
            # stays small while a gigabyte goes through.
            sampler = RssSampler(app.proc.pid)
            sampler.start()
            speed = curl_speeds(url("app", "1GiB"), 1, cookie["app"])
            s = sampler.stop()
            gib["download"] = (speed, min(s) / 1024, max(s) / 1024)
            sampler = RssSampler(app.proc.pid)
            sampler.start()
            start = time.monotonic()
            browser.upload(os.path.join(src, "1GiB"))
            elapsed = time.monotonic() - start
            s = sampler.stop()
            gib["upload"] = (1024 / elapsed, min(s) / 1024, max(s) / 1024)
    finally:
        if nginx and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        for a in apps:
            a.stop()
        log.close()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)

    def ratio(test, target, index=0):
        values = []
        for fig in rounds:
            a, g = fig[(test, target)], fig[(test, "nginx")]
            a, g = (a[index], g[index]) if isinstance(a, tuple) else (a, g)
            values.append(a / g)
        return median(values)

    def med(test, target, index=0):
        return median([fig[(test, target)][index] if isinstance(fig[(test, target)], tuple) else fig[(test, target)] for fig in rounds])

    print()
    print(f"{'test':<26} {'app':>10} {'nginx':>10} {'hand-over':>10} {'app/nginx':>10} {'hand/nginx':>10}  target")
    goals = {
        "4KiB": ("app ≥ 0.40", lambda: ratio("4KiB", "app") >= 0.40),
        "1MiB": ("app ≥ 0.90", lambda: ratio("1MiB", "app") >= 0.90),
        "256MiB×1": ("app ≥ 0.95, hand-over ≥ 0.95", lambda: ratio("256MiB×1", "app") >= 0.95 and ratio("256MiB×1", "handover") >= 0.95),
        "256MiB×4": ("app ≥ 0.95", lambda: ratio("256MiB×4", "app") >= 0.95),
    }
    labels = {"4KiB": "4 KiB req/s (c64)", "1MiB": "1 MiB req/s (c64)", "256MiB×1": "256 MiB MiB/s, 1 stream", "256MiB×4": "256 MiB MiB/s, 4 streams"}
    for test in ("4KiB", "1MiB", "256MiB×1", "256MiB×4"):
        goal, met = goals[test]
        print(f"{labels[test]:<26} {med(test, 'app'):>10.0f} {med(test, 'nginx'):>10.0f} {med(test, 'handover'):>10.0f} "
              f"{ratio(test, 'app'):>10.2f} {ratio(test, 'handover'):>10.2f}  {goal}: {'met' if met() else 'MISSED'}")
    p99_app, p99_nginx, p99_hand = med("4KiB", "app", 1), med("4KiB", "nginx", 1), med("4KiB", "handover", 1)
    p99_ratio = median([fig[("4KiB", "app")][1] / fig[("4KiB", "nginx")][1] for fig in rounds])
    print(f"{'4 KiB p99 ms (c64)':<26} {p99_app:>10.2f} {p99_nginx:>10.2f} {p99_hand:>10.2f} {p99_ratio:>10.2f} {'':>10}  app ≤ 2 × nginx: {'met' if p99_ratio <= 2 else 'MISSED'}")
    print(f"hand-over 4 KiB ≥ app 4 KiB: {'met' if ratio('4KiB', 'handover') >= ratio('4KiB', 'app') else 'MISSED'}")
    share_rps = med("4KiB", "share")
    share_vs_app = median([fig[("4KiB", "share")][0] / fig[("4KiB", "app")][0] for fig in rounds])
    print(f"share link (no limit) 4 KiB: {share_rps:.0f} req/s, {ratio('4KiB', 'share'):.2f} of nginx, "
          f"{share_vs_app:.2f} of the logged-in download (target: the same goals as the app)")
    audit_cost = median([fig[("4KiB", "app")][0] / fig[("4KiB", "quiet")][0] for fig in rounds])
    print(f"4 KiB with the audit log on: {audit_cost:.2f} of the rate with it off (target >= 0.90): "
          f"{'met' if audit_cost >= 0.90 else 'MISSED'}")
    print(f"app peak RSS over the rounds: {peak_mib:.1f} MiB (target < 25 MiB): {'met' if peak_mib < 25 else 'MISSED'}")
    if sweep:
        print()
        print("4 KiB req/s by connections:  " + "  ".join(f"{t:>22}" for t in targets))
        for conns in (1, 16, 64, 256):
            cells = []
            for t in targets:
                rps, p99 = sweep[(conns, t)]
                rel = rps / sweep[(conns, "nginx")][0]
                cells.append(f"{rps:>8.0f} ({rel:.2f}) p99 {p99:>5.1f}")
            print(f"  c{conns:<26}" + "  ".join(f"{c:>22}" for c in cells))
    if gib:
        for kind, (speed, low, high) in gib.items():
            print(f"1 GiB {kind}: {speed:.0f} MiB/s; app RSS during it {low:.1f}–{high:.1f} MiB")
    print(f"machine: {os.cpu_count()} cores, rounds: {args.rounds} × {args.seconds} s, load average now {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "rounds": [{f"{k[0]} {k[1]}": v for k, v in fig.items()} for fig in rounds],
                "sweep": {f"c{k[0]} {k[1]}": v for k, v in sweep.items()},
                "gib": gib, "peak_rss_mib": peak_mib,
            }, f, indent=1)


if __name__ == "__main__":
    main()
