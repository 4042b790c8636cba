#!/usr/bin/env python3
"""Costs that must not grow with the data (started by bench/scale.sh).

1. The 4 KiB download rate (wrk -t2 -c64) with 1,000 rows in the files table, then with
   1,000,000: the two rates should be within 10% of each other.
2. The admin list, a search and a deep page over 100,000 files: p95 of sequential requests,
   target < 50 ms each.

Rows are seeded straight into the app's SQLite file (one transaction, executemany) without
their folded search text, which `private-media migrate` then writes (timed), owned by the
admin, with keys that have no object (they are listed, never downloaded); the downloaded
file is a real upload. The server is stopped while seeding and started again after.
"""

import argparse
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from download import App, Browser, free_port, wrk  # noqa: E402


def seed(db_path, owner_id, count, start):
    """Adds `count` rows named file-START… to the files table."""
    conn = sqlite3.connect(db_path)
    stamp = "2026-12-01 12:00:00.000000"
    words = ["invoice", "contract", "payslip", "scan", "report", "minutes", "photo", "memo"]
    rows = (
        (
            f"{i:032x}",
            f"{words[i % len(words)]} {i}",
            f"{words[i % len(words)]}-{i}.pdf",
            "local",
            f"seeded/{i:08d}.pdf",
            1000 + i % 5000,
            "application/pdf",
            "0" * 64,
            owner_id,
            owner_id,
            "owner",
            stamp,
            stamp,
        )
        for i in range(start, start + count)
    )
    with conn:
        conn.executemany(
            "INSERT INTO files (id, title, original_name, storage, storage_key, size, "
            "content_type, sha256, owner_id, uploaded_by_id, access, uploaded_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    # A site's WAL is checkpointed as it goes; a freshly seeded one would hold every row twice.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def p95(browser, path, n):
    times = []
    for _ in range(n):
        req = urllib.request.Request(browser.base + path, headers={"Cookie": browser.cookie})
        start = time.monotonic()
        with urllib.request.urlopen(req) as r:
            r.read()
            if r.status != 200:
                sys.exit(f"{path}: {r.status}")
        times.append((time.monotonic() - start) * 1000)
    times.sort()
    return times[int(len(times) * 0.95) - 1], statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="private-media-scale.", dir=os.environ.get("TMPDIR"))
    data = os.path.join(work, "data")
    log = open(os.path.join(work, "server.log"), "w")
    password = f"bench-password-{os.getpid()}"
    port = free_port()
    db_path = os.path.join(data, "private-media.sqlite3")
    app = None
    try:
        app = App(args.bin, data, password, port, {}, log)
        browser = Browser(app.base, password)
        src = os.path.join(work, "f4k")
        with open(src, "wb") as f:
            f.write(os.urandom(4096))
        file_id = browser.upload(src)
        conn = sqlite3.connect(db_path)
        (owner_id,) = conn.execute("SELECT owner_id FROM files WHERE id = ?", (file_id,)).fetchone()
        conn.close()
        url = f"{app.base}/files/{file_id}/download"

        def restart():
            nonlocal app, browser
            app.stop()
            # Seeded rows have no search text: `migrate` folds them with the app's own fold
            # (as a start would, but without the start's health-check deadline).
            started = time.monotonic()
            subprocess.run(
                [args.bin, "migrate"],
                env={**os.environ, "PRIVATE_MEDIA_DATA_DIR": data, "PRIVATE_MEDIA_LOG": "warn"},
                stdout=log,
                stderr=log,
                check=True,
            )
            print(f"search text folded at start (migrate): {time.monotonic() - started:.1f} s", flush=True)
            app = App(args.bin, data, password, port, {}, log)
            browser = Browser(app.base, password)

        def rate():
            values = [wrk(url, 64, args.seconds, browser.cookie)[0] for _ in range(args.rounds)]
            return statistics.median(values)

        app.stop()
        seed(db_path, owner_id, 999, 0)
        restart()
        small = rate()
        print(f"4 KiB download, 1,000 rows: {small:.0f} req/s", flush=True)

        app.stop()
        seed(db_path, owner_id, 99_000, 999)
        restart()
        timings = {}
        for label, path in (
            ("admin list, page 1", "/admin/files"),
            ("admin search", "/admin/files?q=contract+4711"),
            ("admin deep page (2,000 of 4,000)", "/admin/files?page=2000"),
            ("readable list, deep page", "/files?page=2000"),
        ):
            timings[label] = p95(browser, path, 40)
            print(f"{label} over 100,000 files: p95 {timings[label][0]:.1f} ms, median {timings[label][1]:.1f} ms", flush=True)

        app.stop()
        seed(db_path, owner_id, 900_000, 100_000 - 1)
        restart()
        big = rate()
        print(f"4 KiB download, 1,000,000 rows: {big:.0f} req/s", flush=True)
    finally:
        if app:
            app.stop()
        log.close()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)

    print()
    drop = 1 - big / small
    print(f"1M vs 1k rows: {big / small:.2f} of the rate (target within 10%): {'met' if drop <= 0.10 else 'MISSED'}")
    for label, (value, _) in timings.items():
        print(f"{label}: p95 {value:.1f} ms (target < 50 ms): {'met' if value < 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
