#!/usr/bin/env python3
"""What the audit log costs a 4 KiB download: the same binary twice, one instance with
`PRIVATE_MEDIA_AUDIT__ENABLED=false`, one with the audit on, wrk -t2 -c64 against each in
turn, rounds interleaved (each round starting with the other), median of the per-round ratios.

Usage: python3 bench/audit_cost.py BIN [ROUNDS] [SECONDS]   (release build; wrk installed,
e.g. by bench/download.sh). Loopback only; both instances are stopped at the end.
"""
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download import App, Browser, free_port, wrk  # noqa: E402

binary = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 6
work = tempfile.mkdtemp(prefix="private-media-audit-cost.")
source = os.path.join(work, "4KiB")
with open(source, "wb") as f:
    f.write(os.urandom(4096))
log = open(os.path.join(work, "server.log"), "w")
password = f"bench-password-{os.getpid()}"
apps, urls = [], []
try:
    for i, audit in enumerate(("false", "true")):
        app = App(binary, os.path.join(work, f"data{i}"), password, free_port(),
                  {"PRIVATE_MEDIA_AUDIT__ENABLED": audit}, log)
        apps.append(app)
        browser = Browser(app.base, password)
        urls.append((f"{app.base}/files/{browser.upload(source)}/download", browser.cookie))
    off, on = [], []
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        got = {}
        for i in order:
            got[i] = wrk(urls[i][0], 64, seconds, urls[i][1])[0]
        off.append(got[0])
        on.append(got[1])
        print(f"round {r + 1}: audit off {got[0]:.0f} req/s, on {got[1]:.0f} req/s, "
              f"on/off {got[1] / got[0]:.3f}", flush=True)
    ratio = statistics.median(b / a for a, b in zip(off, on))
    print(f"4 KiB with the audit on: {ratio:.2f} of the rate with it off "
          f"(target >= 0.90): {'met' if ratio >= 0.90 else 'MISSED'}")
finally:
    for app in apps:
        app.stop()
    log.close()
