#!/usr/bin/env python3
"""The audit log over a million events: `/admin/audit` pages (newest, each filter, filters
combined, a deep keyset page) answered with p95 < 50 ms, and the CSV of all events streamed
in constant memory (the app's RSS sampled while it streams).

Events are seeded straight into the audit file (`data/private-media-audit.sqlite3`, one
transaction, executemany) while the server is stopped: 20 users, 2,000 files, a year of
events, mostly downloads, some refused, logins and changes.

Events older than `[audit] retention_days` (365) are pruned when the server starts, so a few
thousand of the oldest seeded ones are gone before the pages are timed.

Usage: python3 bench/audit_scale.py BIN [EVENTS]   (release build; default 1,000,000 events).
Loopback only; the instance is stopped at the end.
"""
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download import App, Browser, free_port, status_kib  # noqa: E402

binary = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
work = tempfile.mkdtemp(prefix="private-media-audit-scale.")
data = os.path.join(work, "data")
log = open(os.path.join(work, "server.log"), "w")
password = f"bench-password-{os.getpid()}"

users = [f"user{u:02d}" for u in range(20)]
files = [f"{f:032x}" for f in range(2000)]
end = datetime(2026, 12, 1)


def rows():
    rnd = random.Random(7)
    for i in range(count):
        at = end - timedelta(seconds=(count - i) * 365 * 86400 / count)
        user = users[rnd.randrange(len(users))]
        kind = rnd.random()
        if kind < 0.90:
            refused = rnd.random() < 0.05
            f = files[rnd.randrange(len(files))]
            yield (at.strftime("%Y-%m-%d %H:%M:%S.%f"), "download",
                   "refused" if refused else "granted", 403 if refused else 200, "detail",
                   None if refused else "app", "GET", None, f"id-{user}", user, None, f,
                   f"report, \"{f[-4:]}\".pdf", f"bench/{f}.pdf", "127.0.0.1", "curl/8", None)
        else:
            event = "login" if kind < 0.97 else "edit"
            yield (at.strftime("%Y-%m-%d %H:%M:%S.%f"), event, None, None, None, None, None,
                   None, f"id-{user}", user, None, None, None, None, "127.0.0.1", "Mozilla/5.0",
                   None if event == "login" else "access owner → staff")


def seed(path):
    started = time.time()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO audit_events (at, event, outcome, status, route, delivery, method, "
            "byte_range, user_id, username, link_id, file_id, file_name, storage_key, client, "
            "user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
    conn.close()
    return time.time() - started


def timed(opener, url, n=20):
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with opener.open(url) as r:
            r.read()
            assert r.status == 200, (url, r.status)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


app = App(binary, data, password, free_port(), {}, log)
try:
    app.stop()
    took = seed(os.path.join(data, "private-media-audit.sqlite3"))
    print(f"seeded {count:,} events in {took:.1f} s")
    app = App(binary, data, password, app.port, {}, log)
    browser = Browser(app.base, password)
    opener = browser.opener
    base = app.base
    day = (end - timedelta(days=300)).strftime("%Y-%m-%d")
    # The id of an event about two thirds of the way back: a deep keyset page.
    deep = count // 3
    cases = [
        ("newest first", "/admin/audit"),
        ("one file", f"/admin/audit?file={files[1234]}"),
        ("one user", "/admin/audit?user=user07"),
        ("logins", "/admin/audit?event=login"),
        ("one day, 300 days ago", f"/admin/audit?from={day}&to={day}"),
        ("user + event + day", f"/admin/audit?user=user07&event=download&from={day}&to={day}"),
        ("deep keyset page", f"/admin/audit?before={deep}"),
        ("deep page, one user", f"/admin/audit?user=user07&before={deep}"),
        ("user + day, older page", f"/admin/audit?user=user07&from={day}&to={day}&before={deep}"),
        ("file + a year", f"/admin/audit?file={files[77]}&from=2025-12-01&to=2026-12-01"),
        ("user's edits, a year", "/admin/audit?user=user03&event=edit&from=2025-12-01&to=2026-12-01"),
    ]
    worst = 0.0
    for name, path in cases:
        median, p95 = timed(opener, base + path)
        worst = max(worst, p95)
        print(f"{name:28} median {median:6.1f} ms  p95 {p95:6.1f} ms")
    print(f"audit pages over {count:,} events: worst p95 {worst:.1f} ms "
          f"(target < 50 ms): {'met' if worst < 50 else 'MISSED'}")

    rss_before = status_kib(app.proc.pid, "VmRSS")
    peak = [rss_before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], status_kib(app.proc.pid, "VmRSS"))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.time()
    lines = 0
    size = 0
    with opener.open(base + "/admin/audit.csv") as r:
        while True:
            chunk = r.read(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            lines += chunk.count(b"\n")
    took = time.time() - started
    done.set()
    sampler.join()
    print(f"CSV of all events: {lines - 1:,} rows (newlines inside quoted names count too), "
          f"{size / 2**20:.0f} MiB in {took:.1f} s; app RSS {rss_before / 1024:.1f} MiB before, "
          f"peak {peak[0] / 1024:.1f} MiB while streaming")
finally:
    app.stop()
    log.close()
