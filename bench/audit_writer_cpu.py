#!/usr/bin/env python3
"""The audit writer's CPU per event, beside the request workers' CPU per download: one
instance (audit on), a logged-in 4 KiB download under wrk -t2 -c64 for SECONDS, and the CPU
time (utime + stime from /proc) of the blocking-pool threads (`tokio-rt-worker`: with the
audit on, the writer is all they do on cached downloads) and of the workers
(`actix-rt|system`) divided by the downloads. Steadier than a throughput ratio for telling
a change of a few per cent in the writer apart (README: "Audit log").

Usage: python3 bench/audit_writer_cpu.py BIN [SECONDS] [RUNS]   (release build; wrk installed,
e.g. by bench/download.sh). Loopback only; the instance is stopped at the end of each run.
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download import App, Browser, free_port, wrk  # noqa: E402


def thread_cpu(pid, name):
    """Seconds of CPU the threads called `name` of process `pid` have used."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


binary = sys.argv[1]
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
for run in range(runs):
    work = tempfile.mkdtemp(prefix="private-media-writer-cpu.")
    source = os.path.join(work, "4KiB")
    with open(source, "wb") as f:
        f.write(os.urandom(4096))
    log = open(os.path.join(work, "server.log"), "w")
    password = f"bench-password-{os.getpid()}"
    app = App(binary, os.path.join(work, "data"), password, free_port(), {}, log)
    try:
        browser = Browser(app.base, password)
        url = f"{app.base}/files/{browser.upload(source)}/download"
        wrk(url, 64, 2, browser.cookie)
        time.sleep(0.5)
        writer0 = thread_cpu(app.proc.pid, "tokio-rt-worker")
        workers0 = thread_cpu(app.proc.pid, "actix-rt|system")
        rate, _ = wrk(url, 64, seconds, browser.cookie)
        # The writer gathers for 100 ms before it writes a batch.
        time.sleep(0.6)
        writer1 = thread_cpu(app.proc.pid, "tokio-rt-worker")
        workers1 = thread_cpu(app.proc.pid, "actix-rt|system")
        downloads = rate * seconds
        print(f"run {run + 1}/{runs}: {rate:.0f} req/s; writer {1e6 * (writer1 - writer0) / downloads:.2f} µs "
              f"per event, workers {1e6 * (workers1 - workers0) / downloads:.2f} µs per download", flush=True)
    finally:
        app.stop()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
