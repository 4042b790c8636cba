#!/usr/bin/env python3
"""Peak memory while 20 large photos are uploaded at once and thumbnailed (README:
"Thumbnails"): generates PHOTOS PNGs of WIDTH x HEIGHT pixels (24 MP by default: 72 MB once
decoded, a few MB on disk), starts one instance with a fresh data dir on a loopback port,
uploads them all at the same time with curl, and reports the server's peak RSS (VmHWM and a
5 ms sampler), the time taken and how many got thumbnails. Without the bound on concurrent
decodes the peak would be about PHOTOS x 72 MB.

Usage: python3 bench/thumbnails_rss.py BIN [PHOTOS] [WIDTH] [HEIGHT]   (release build).
Every upload is cut off after 300 s; the instance is stopped at the end.
"""
import os
import struct
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download import App, Browser, RssSampler, free_port, status_kib  # noqa: E402

binary = sys.argv[1]
photos = int(sys.argv[2]) if len(sys.argv) > 2 else 20
width = int(sys.argv[3]) if len(sys.argv) > 3 else 6000
height = int(sys.argv[4]) if len(sys.argv) > 4 else 4000


def png(path, w, h, seed):
    """An RGB PNG with a gradient (compresses well, decodes to w*h*3 bytes)."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    row = bytes((x * 255 // w + seed) % 256 for x in range(w)) * 3
    z = zlib.compressobj(1)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        data = bytearray()
        for y in range(h):
            data += b"\x00" + row
            if len(data) > 1 << 22:
                f.write(chunk(b"IDAT", z.compress(bytes(data))))
                data.clear()
        f.write(chunk(b"IDAT", z.compress(bytes(data)) + z.flush()))
        f.write(chunk(b"IEND", b""))


work = tempfile.mkdtemp(prefix="private-media-thumbs-rss.")
paths = []
for i in range(photos):
    path = os.path.join(work, f"photo{i}.png")
    png(path, width, height, i * 11)
    paths.append(path)
size_mb = sum(os.path.getsize(p) for p in paths) / 1e6
print(f"{photos} photos of {width}x{height} ({width * height / 1e6:.0f} MP, "
      f"{width * height * 3 / 1e6:.0f} MB decoded each), {size_mb:.0f} MB on disk", flush=True)
log = open(os.path.join(work, "server.log"), "w")
password = f"bench-password-{os.getpid()}"
app = App(binary, os.path.join(work, "data"), password, free_port(),
          {"PRIVATE_MEDIA_UPLOAD__UPLOAD_TO": "bench"}, log)
try:
    browser = Browser(app.base, password)
    idle = status_kib(app.proc.pid, "VmRSS")
    sampler = RssSampler(app.proc.pid)
    sampler.start()
    ids, failures = [], []

    def upload(path):
        try:
            ids.append(browser.upload(path))
        except SystemExit as e:
            failures.append(str(e))

    started = time.monotonic()
    threads = [threading.Thread(target=upload, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    took = time.monotonic() - started
    samples = sampler.stop()
    hwm = status_kib(app.proc.pid, "VmHWM")
    thumbs = 0
    for root, _, files in os.walk(os.path.join(work, "data", "private")):
        thumbs += sum(1 for f in files if f == "small.jpg" and root.endswith(".thumbs"))
    print(f"uploaded {len(ids)} of {photos} in {took:.1f} s ({len(failures)} failed); "
          f"{thumbs} got thumbnails")
    print(f"RSS idle {idle / 1024:.0f} MiB, peak sampled {max(samples, default=0) / 1024:.0f} MiB, "
          f"VmHWM {hwm / 1024:.0f} MiB")
finally:
    app.stop()
    log.close()
