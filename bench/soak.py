#!/usr/bin/env python3
"""Load driver for bench/soak.sh: one asyncio process, raw sockets, standard library only.

Runs DURATION seconds of mixed load with CONNECTIONS concurrent connections against one
private-media instance on loopback, samples the server's RSS every 100 ms, then checks the
data directory (every upload's row and object hash, no temp file left, no orphan object).
Prints a summary table; exits 1 on any failure, 2 on a set-up error.

Every socket operation has a timeout and every client stops at the deadline; the whole run
is cancelled DURATION + GRACE seconds after it started, whatever the server does.

Usage (soak.sh passes everything): soak.py --port P --pid PID --data-dir D --admin-password W
  --login-users a,b,c --staff-users x,y --user-password W [--duration 60] [--connections 1000]
"""

import argparse
import asyncio
import collections
import hashlib
import os
import pickle
import random
import re
import select
import signal
import socket
import sqlite3
import sys
import threading
import time

OP_TIMEOUT = 30.0  # seconds for any single connect / write / read of a well-behaved client
GRACE = 45.0  # after the deadline: time left for requests in flight before everything is cancelled
# actix closes a keep-alive connection 5 s after it wrote the last answer (and a new one 5 s
# after the accept if no request head came). The driver only sees when its own event loop got
# to the answer's head, up to its loop lag later, and a big answer sits in socket buffers long
# after the server finished writing it; so a connection that was quiet for 2 s or more from
# the driver's point of view may have been idle for 5 s from the server's.
KEEPALIVE_IDLE = 2.0
# Like any pooling client (an idle timeout under the server's), a connection quiet for this
# long is not reused: the next request opens a new one (counted, not a failure).
REUSE_LIMIT = 1.5
BOUNDARY = "----private-media-soak-boundary"
TOKEN_RE = re.compile(rb'name="csrf_token" value="([^"]*)"')
ID_RE = re.compile(r"^/admin/files/([0-9a-f]{32})$")

# ---------------------------------------------------------------------------------------------
# Bookkeeping


class Stats:
    def __init__(self):
        self.requests = collections.Counter()  # kind -> requests completed as expected
        self.expected = collections.Counter()  # kind -> expected refusals (e.g. 429)
        self.failures = collections.Counter()  # kind -> failures
        self.examples = collections.defaultdict(list)  # kind -> a few failure descriptions
        self.bytes_in = 0
        self.bytes_out = 0
        self.latency = collections.defaultdict(list)
        self.retries = 0
        self.reconnects = 0
        self.retry_idle = []
        self.note408 = []  # (reused?, quiet seconds) of 408 answers not retried
        self.retry_kinds = collections.Counter()
        self.uploads = []  # (id, sha256 hex, size)
        self.slow = collections.Counter()  # outcome -> count

    def ok(self, kind, started):
        self.requests[kind] += 1
        self.latency[kind].append(time.monotonic() - started)

    def fail(self, kind, what):
        self.failures[kind] += 1
        if len(self.examples[kind]) < 5:
            self.examples[kind].append(what)


STATS = Stats()


class HttpError(Exception):
    """A transport problem: reset, refused, timeout, early close, unparsable answer."""


class Conn:
    """One HTTP/1.1 keep-alive connection with a timeout on every operation."""

    def __init__(self, host, port, source=None, rcvbuf=None):
        self.host, self.port, self.source, self.rcvbuf = host, port, source, rcvbuf
        self.reader = self.writer = None
        self.used = False
        self.last = time.monotonic()

    async def connect(self):
        began = time.monotonic()  # the server cannot have accepted before this
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if self.rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            if self.source:
                sock.bind((self.source, 0))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (self.host, self.port)), OP_TIMEOUT)
            self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        except BaseException:
            sock.close()
            raise
        self.used = False
        self.last = began

    def close(self):
        if self.writer is not None:
            try:
                self.writer.transport.abort()
            except Exception:
                pass
        self.reader = self.writer = None

    async def send(self, data):
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), OP_TIMEOUT)
        STATS.bytes_out += len(data)

    async def read_head(self):
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), OP_TIMEOUT)
        except asyncio.LimitOverrunError as e:
            raise HttpError("response head too long") from e
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"bad status line {lines[0]!r}")
        headers = collections.defaultdict(list)
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()].append(v.strip())
        return int(parts[1]), headers

    async def read_body(self, headers, sink=None, cap=8 << 20):
        """Reads the body; hands chunks to `sink` if given, else returns them (at most `cap`)."""
        chunks, total = [], 0

        async def take(n):
            nonlocal total
            while n > 0:
                piece = await asyncio.wait_for(self.reader.read(min(n, 1 << 18)), OP_TIMEOUT)
                if not piece:
                    raise asyncio.IncompleteReadError(b"", n)
                n -= len(piece)
                total += len(piece)
                if sink:
                    sink(piece)
                elif total <= cap:
                    chunks.append(piece)

        if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            while True:
                line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), OP_TIMEOUT)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    await asyncio.wait_for(self.reader.readuntil(b"\r\n"), OP_TIMEOUT)
                    break
                await take(size)
                await asyncio.wait_for(self.reader.readexactly(2), OP_TIMEOUT)
        elif "content-length" in headers:
            await take(int(headers["content-length"][0]))
        STATS.bytes_in += total
        return b"".join(chunks), total

    async def request(self, method, path, headers=(), body=b"", sink=None, idempotent=True):
        """One request on this connection (reconnecting if needed). Returns (status, headers,
        body bytes, body length). A request that found a reused connection closed (FIN or RST)
        before any byte of an answer, or answered 408, is retried once on a new connection, as
        browsers do (RFC 9112 9.3.1: the server may close an idle connection at any time), and
        counted; so is one on a new connection quiet for KEEPALIVE_IDLE (the head timeout). An
        early answer to a request whose body the server stopped reading is returned. Anything
        else that goes wrong raises HttpError."""
        for attempt in (0, 1):
            if self.writer is not None and time.monotonic() - self.last >= REUSE_LIMIT:
                STATS.reconnects += 1
                self.close()
            if self.writer is None:
                try:
                    await self.connect()
                except (OSError, asyncio.TimeoutError) as e:
                    raise HttpError("connect: " + describe(e, False)) from e
            idle = time.monotonic() - self.last  # an upper bound of the server's idle time
            head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
            head += list(headers)
            if body or method == "POST":
                head.append(f"Content-Length: {len(body)}")
            data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
            got_any = False
            self.nreq = getattr(self, "nreq", 0) + 1
            reused = self.used
            try:
                try:
                    await self.send(data)
                except (ConnectionError, OSError) as e:
                    # The server may have answered early (and closed): read that answer.
                    try:
                        status, resp_headers = await asyncio.wait_for(self.read_head(), 2)
                    except Exception:
                        raise e from None
                    self.close()
                    return status, resp_headers, b"", 0
                status, resp_headers = await self.read_head()
                got_any = True
                self.last = time.monotonic()
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    payload, length = b"", 0
                else:
                    payload, length = await self.read_body(resp_headers, sink)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, OSError) as e:
                self.close()
                if (attempt == 0 and not got_any and (reused or idle >= KEEPALIVE_IDLE)
                        and not isinstance(e, asyncio.TimeoutError)):
                    STATS.retries += 1
                    STATS.retry_idle.append(idle)
                    STATS.retry_kinds[describe(e, False).split(" before")[0]] += 1
                    continue
                raise HttpError(f"{describe(e, got_any)} ({method} {path.split('/')[1]}, "
                                f"{'reused' if self.used else 'new'} connection, "
                                f"{idle:.1f} s since the last answer)") from e
            if status == 408 and attempt == 0 and (reused or idle >= KEEPALIVE_IDLE):
                # "408: the server would like to close this unused connection" (RFC 9110).
                self.close()
                STATS.retries += 1
                STATS.retry_idle.append(idle)
                STATS.retry_kinds["408 answer"] += 1
                continue
            if status == 408:
                STATS.note408.append((reused, idle))
            self.used = True
            if "close" in ",".join(resp_headers.get("connection", [])).lower():
                self.close()
            return status, resp_headers, payload, length
        raise HttpError("unreachable")


async def slow_connect(conn):
    try:
        await conn.connect()
    except (OSError, asyncio.TimeoutError) as e:
        raise HttpError(describe(e, False)) from e


def describe(e, got_head):
    where = "mid-body" if got_head else "before the answer"
    if isinstance(e, asyncio.TimeoutError):
        return f"timeout ({OP_TIMEOUT:.0f} s) {where}"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return f"connection reset {where}"
    if isinstance(e, asyncio.IncompleteReadError):
        return f"connection closed {where}"
    return f"{type(e).__name__}: {e} {where}"


def cookies_from(headers, jar):
    for value in headers.get("set-cookie", []):
        pair = value.split(";", 1)[0]
        if "=" in pair:
            k, v = pair.split("=", 1)
            jar[k.strip()] = v.strip()


def cookie_header(jar):
    return ["Cookie: " + "; ".join(f"{k}={v}" for k, v in jar.items())] if jar else []


SAFE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def urlencode(s):
    return "".join(chr(b) if b in SAFE else "%%%02X" % b for b in s.encode())


def form(fields):
    return "&".join(f"{urlencode(k)}={urlencode(v)}" for k, v in fields).encode()


FORM = "Content-Type: application/x-www-form-urlencoded"


async def login(conn, username, password, jar):
    """GET /login, POST it; returns the POST's status and Location (the jar is updated)."""
    status, h, page, _ = await conn.request("GET", "/login", cookie_header(jar))
    if status != 200:
        return status, f"GET /login answered {status}"
    cookies_from(h, jar)
    m = TOKEN_RE.search(page)
    if not m:
        return 0, "no csrf_token on /login"
    body = form([("csrf_token", m.group(1).decode()), ("username", username), ("password", password)])
    status, h, _, _ = await conn.request("POST", "/login", [FORM] + cookie_header(jar), body,
                                         idempotent=False)
    cookies_from(h, jar)
    return status, (h.get("location") or [""])[0]


def multipart(token, name, data, access="staff"):
    pre = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"access\"\r\n\r\n{access}\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    return pre + data + f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = f"Content-Type: multipart/form-data; boundary={BOUNDARY}"

# ---------------------------------------------------------------------------------------------
# Clients


class Run:
    def __init__(self, args):
        self.args = args
        self.host, self.port = "127.0.0.1", args.port
        self.deadline = None
        self.files = {}  # name -> (id, bytes, sha256 hex)
        self.login_cookies = []  # jars of logged-in login users (readers)
        self.staff_cookies = []
        self.pool = os.urandom(8 << 20)  # upload bodies are slices of this with a unique prefix
        self.upload_seq = 0
        self.wrong_seq = 0
        self.wrong_source = None

    def running(self):
        return time.monotonic() < self.deadline

    def conn(self, **kw):
        return Conn(self.host, self.port, **kw)

    async def guarded(self, kind, coro_fn):
        """Runs one well-behaved client loop: every transport error is a failure, then the
        client reconnects and goes on."""
        while self.running():
            try:
                await coro_fn()
            except HttpError as e:
                STATS.fail(kind, str(e))
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug in the driver: say so, and keep going
                STATS.fail(kind, f"driver error {type(e).__name__}: {e}")
                await asyncio.sleep(0.2)

    # Downloads: full and ranged, bytes verified.
    async def downloader(self, n):
        rng = random.Random(n)
        jar = dict(self.login_cookies[n % len(self.login_cookies)])
        conn = self.conn()
        names = ["f4k", "f1m", "f20m"]

        async def loop():
            try:
                while self.running():
                    name = rng.choices(names, weights=[75, 22, 3])[0]
                    fid, data, digest = self.files[name]
                    size = len(data)
                    path = f"/files/{fid}/download"
                    started = time.monotonic()
                    if rng.random() < 0.4:
                        kind = "download-range"
                        r = rng.random()
                        if r < 0.6:
                            a = rng.randrange(size)
                            b = min(size - 1, a + rng.randrange(1, 256 * 1024))
                            spec = f"{a}-{b}"
                        elif r < 0.8:
                            a = max(0, size - rng.randrange(1, 256 * 1024))
                            b = size - 1
                            spec = f"{a}-"
                        else:
                            k = rng.randrange(1, min(size, 256 * 1024) + 1)
                            a, b = size - k, size - 1
                            spec = f"-{k}"
                        status, h, body, _ = await conn.request(
                            "GET", path, cookie_header(jar) + [f"Range: bytes={spec}"])
                        want = f"bytes {a}-{b}/{size}"
                        got = (h.get("content-range") or [""])[0]
                        if status != 206 or got != want or body != data[a:b + 1]:
                            STATS.fail(kind, f"{name} Range {spec}: {status} {got!r} "
                                             f"({len(body)} bytes, want {want})")
                            continue
                    else:
                        kind = "download-full"
                        hasher = hashlib.sha256()
                        status, h, _, length = await conn.request(
                            "GET", path, cookie_header(jar), sink=hasher.update)
                        if status != 200 or length != size or hasher.hexdigest() != digest:
                            STATS.fail(kind, f"{name}: {status}, {length} bytes (want {size})"
                                             f"{'' if hasher.hexdigest() == digest else ', wrong bytes'}")
                            continue
                    cookies_from(h, jar)
                    STATS.ok(kind, started)
                    await asyncio.sleep(rng.uniform(0.05, 0.5))  # think time: keeps the driver's CPU bounded
            finally:
                conn.close()

        await self.guarded("download", loop)

    # Logins with the right password, spread over several users; a session check after each.
    async def login_loop(self, n):
        rng = random.Random(1000 + n)
        conn = self.conn()
        users = self.args.login_users

        async def loop():
            try:
                while self.running():
                    if rng.random() < 0.1:
                        await self.wrong_login(rng)
                    jar = {}
                    # The throttle counts an attempt as a failure until its password has been
                    # checked, and refuses a sixth at once for one name: clients keep to their
                    # own name (3 clients to a name with the defaults), so that well-behaved
                    # logins never race that far, however slow argon2 gets under load.
                    user = users[n % len(users)]
                    started = time.monotonic()
                    status, where = await login(conn, user, self.args.user_password, jar)
                    if status != 303 or not where.startswith("/"):
                        STATS.fail("login", f"{user}: {status} {where}")
                        continue
                    status, _, _, _ = await conn.request("GET", "/files", cookie_header(jar))
                    if status != 200:
                        STATS.fail("login", f"{user}: /files after login answered {status}")
                        continue
                    STATS.ok("login", started)
                    await asyncio.sleep(rng.uniform(0.2, 1.0))
            finally:
                conn.close()

        await self.guarded("login", loop)

    async def wrong_login(self, rng):
        """A wrong password for a throwaway name, from its own loopback address when the
        system allows it (so the per-address throttle never reaches well-behaved logins).
        200 (the form again) and 429 (throttled) are both the expected answers."""
        self.wrong_seq += 1
        if self.wrong_source is None and self.wrong_seq > 25 // self.args.procs:
            return  # no second address: stay under the 30-per-address limit
        conn = self.conn(source=self.wrong_source)
        started = time.monotonic()
        try:
            status, where = await login(conn, f"soak-nobody-{os.getpid()}-{self.wrong_seq % 500}",
                                        "wrong-password", {})
        except HttpError as e:
            STATS.fail("login-wrong", str(e))
            return
        finally:
            conn.close()
        if status == 200:
            STATS.ok("login-wrong", started)
        elif status == 429:
            STATS.expected["login-wrong"] += 1
        else:
            STATS.fail("login-wrong", f"{status} {where}")

    # Uploads of random sizes; each body's SHA-256 and id recorded.
    async def uploader(self, n):
        rng = random.Random(2000 + n)
        jar = dict(self.staff_cookies[n % len(self.staff_cookies)])
        conn = self.conn()
        max_size = self.args.max_upload

        async def loop():
            try:
                while self.running():
                    started = time.monotonic()
                    status, h, page, _ = await conn.request("GET", "/admin/files/new",
                                                            cookie_header(jar))
                    cookies_from(h, jar)
                    m = TOKEN_RE.search(page)
                    if status != 200 or not m:
                        STATS.fail("upload", f"GET /admin/files/new: {status}")
                        continue
                    self.upload_seq += 1
                    size = rng.randrange(1, max_size + 1)
                    start = rng.randrange(len(self.pool) - size + 1)
                    prefix = f"soak {os.getpid()} {n} {self.upload_seq} ".encode()
                    data = (prefix + self.pool[start:start + size])[:max(size, len(prefix))]
                    digest = hashlib.sha256(data).hexdigest()
                    body = multipart(m.group(1).decode(), f"soak-{n}-{self.upload_seq}.bin", data)
                    status, h, _, _ = await conn.request(
                        "POST", "/admin/files", [MULTIPART] + cookie_header(jar), body,
                        idempotent=False)
                    cookies_from(h, jar)
                    where = (h.get("location") or [""])[0]
                    m = ID_RE.match(where)
                    if status != 303 or not m:
                        STATS.fail("upload", f"POST /admin/files ({len(data)} bytes): {status} {where}")
                        continue
                    STATS.uploads.append((m.group(1), digest, len(data)))
                    STATS.ok("upload", started)
                    await asyncio.sleep(rng.uniform(0.1, 0.5))
            finally:
                conn.close()

        await self.guarded("upload", loop)

    # Slow clients: allowed to be cut off; never counted as failures, only tallied.
    async def slow_client(self, n):
        rng = random.Random(3000 + n)
        kinds = [self.slow_reader, self.slow_uploader, self.slow_head]
        while self.running():
            kind = kinds[(n + rng.randrange(3)) % 3] if rng.random() < 0.3 else kinds[n % 3]
            try:
                outcome = await kind(rng)
            except asyncio.CancelledError:
                raise
            except HttpError as e:
                # Raised only by the well-behaved part (connect, the token GET): a failure.
                STATS.fail("slow-setup", f"{kind.__name__}: {e}")
                await asyncio.sleep(0.05)
                continue
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
                outcome = "cut off by the server"
            STATS.slow[f"{kind.__name__}: {outcome}"] += 1

    async def slow_reader(self, rng):
        """GETs the 20 MiB file with a tiny receive buffer and reads ~40 bytes/s."""
        fid = self.files["f20m"][0]
        jar = self.login_cookies[rng.randrange(len(self.login_cookies))]
        conn = self.conn(rcvbuf=4096)
        try:
            await slow_connect(conn)
            head = (f"GET /files/{fid}/download HTTP/1.1\r\nHost: {self.host}\r\n"
                    + "".join(h + "\r\n" for h in cookie_header(jar)) + "\r\n")
            await conn.send(head.encode())
            until = min(self.deadline, time.monotonic() + rng.uniform(5, 20))
            got = 0
            while time.monotonic() < until:
                piece = await asyncio.wait_for(conn.reader.read(8), OP_TIMEOUT)
                if not piece:
                    return "cut off by the server"
                got += len(piece)
                await asyncio.sleep(0.5)
            return "gave up (as planned)"
        finally:
            conn.close()

    async def slow_uploader(self, rng):
        """Starts a 1 MiB upload and sends its body at ~100 bytes/s, then vanishes."""
        jar = dict(self.staff_cookies[rng.randrange(len(self.staff_cookies))])
        conn = self.conn()
        try:
            status, h, page, _ = await conn.request("GET", "/admin/files/new", cookie_header(jar))
            cookies_from(h, jar)
            m = TOKEN_RE.search(page)
            if not m:
                return f"no token ({status})"
            body = multipart(m.group(1).decode(), "slow.bin", os.urandom(1 << 20))
            head = (f"POST /admin/files HTTP/1.1\r\nHost: {self.host}\r\n{MULTIPART}\r\n"
                    + "".join(h + "\r\n" for h in cookie_header(jar))
                    + f"Content-Length: {len(body)}\r\n\r\n")
            await conn.send(head.encode())
            until = min(self.deadline, time.monotonic() + rng.uniform(5, 20))
            sent = 0
            while time.monotonic() < until:
                await conn.send(body[sent:sent + 50])
                sent += 50
                await asyncio.sleep(0.5)
                if conn.reader.at_eof():
                    return "cut off by the server"
            return "gave up mid-body (as planned)"
        finally:
            conn.close()

    async def slow_head(self, rng):
        """Sends a request head one byte every 200 ms (slowloris)."""
        conn = self.conn()
        try:
            await slow_connect(conn)
            head = f"GET /healthz HTTP/1.1\r\nHost: {self.host}\r\nX-Slow: {'x' * 200}\r\n\r\n".encode()
            until = min(self.deadline, time.monotonic() + rng.uniform(5, 20))
            for i in range(len(head)):
                if time.monotonic() >= until:
                    return "gave up (as planned)"
                await conn.send(head[i:i + 1])
                await asyncio.sleep(0.5)
                if conn.reader.at_eof() or conn.reader._buffer:
                    status, _ = await conn.read_head()
                    return f"answered {status}"
            status, _ = await conn.read_head()
            return f"finished, answered {status}"
        finally:
            conn.close()

    # ------------------------------------------------------------------------------------------

    async def setup(self):
        conn = self.conn()
        try:
            jar = {}
            status, where = await login(conn, "admin", self.args.admin_password, jar)
            if status != 303:
                raise SystemExit(f"setup: admin login answered {status} {where}")
            for name, size in (("f4k", 4096), ("f1m", 1 << 20), ("f20m", 20 << 20)):
                data = os.urandom(size)
                status, h, page, _ = await conn.request("GET", "/admin/files/new", cookie_header(jar))
                cookies_from(h, jar)
                token = TOKEN_RE.search(page).group(1).decode()
                # "authenticated": every logged-in login user may read it.
                body = multipart(token, f"{name}.bin", data, access="authenticated")
                status, h, _, _ = await conn.request("POST", "/admin/files",
                                                     [MULTIPART] + cookie_header(jar), body)
                cookies_from(h, jar)
                m = ID_RE.match((h.get("location") or [""])[0])
                if status != 303 or not m:
                    raise SystemExit(f"setup: upload of {name} answered {status}")
                self.files[name] = (m.group(1), data, hashlib.sha256(data).hexdigest())
            for user in self.args.login_users:
                jar = {}
                status, where = await login(conn, user, self.args.user_password, jar)
                if status != 303:
                    raise SystemExit(f"setup: login of {user} answered {status} {where}")
                self.login_cookies.append(jar)
            for user in self.args.staff_users:
                jar = {}
                status, where = await login(conn, user, self.args.user_password, jar)
                if status != 303:
                    raise SystemExit(f"setup: login of {user} answered {status} {where}")
                self.staff_cookies.append(jar)
        finally:
            conn.close()
        # A second loopback address for wrong passwords, if the system routes 127/8 to lo.
        probe = self.conn(source="127.0.0.2")
        try:
            await probe.connect()
            self.wrong_source = "127.0.0.2"
        except OSError:
            print("note: cannot connect from 127.0.0.2; wrong-password logins capped at 25",
                  file=sys.stderr)
        finally:
            probe.close()

    def sample_rss(self, stop, samples):
        """A thread, so that the 100 ms stay 100 ms however busy the event loop is."""
        path = f"/proc/{self.args.pid}/status"
        while not stop.is_set():
            try:
                with open(path) as f:
                    text = f.read()
                rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))
                fds = len(os.listdir(f"/proc/{self.args.pid}/fd"))
                samples.append((time.monotonic(), rss, fds))
            except (OSError, AttributeError):
                samples.append((time.monotonic(), None, None))
            stop.wait(0.1)

    async def watch_lag(self):
        """How late the event loop runs a 50 ms sleep: the driver's own saturation."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            self.max_lag = max(self.max_lag, time.monotonic() - t - 0.05)

    async def load(self, specs):
        """Runs this process's share of the clients until the deadline (+ GRACE at most)."""
        self.max_lag = 0.0
        lag = asyncio.create_task(self.watch_lag())
        fns = {"download": self.downloader, "login": self.login_loop,
               "upload": self.uploader, "slow": self.slow_client}
        n = self.args.connections

        async def staggered(i, coro):  # spread the connects over the first 3 s
            await asyncio.sleep(max(0.0, self.start + 3.0 * i / n - time.monotonic()))
            await coro

        tasks = [asyncio.create_task(staggered(i, fns[kind](k))) for i, kind, k in specs]
        done, pending = await asyncio.wait(tasks, timeout=self.deadline + GRACE - time.monotonic())
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
            STATS.fail("run", f"{len(pending)} clients still busy {GRACE:.0f} s after the deadline")
        for t in done:
            if not t.cancelled() and t.exception():
                STATS.fail("run", f"client crashed: {t.exception()!r}")
        lag.cancel()

    def main(self):
        """Set-up here, then the clients in PROCS forked processes (so that the driver gets
        more than one core's share on a busy machine), the RSS sampler in a thread here."""
        a = self.args
        asyncio.run(self.setup())
        n = a.connections
        counts = {
            "download": n * 70 // 100,
            "login": max(1, n * 3 // 100),
            "upload": max(1, n * 7 // 100),
        }
        counts["slow"] = n - sum(counts.values())
        if a.only:
            # One kind alone, as many clients of it as in the full mix: what that kind costs.
            counts = {k: (v if k == a.only else 0) for k, v in counts.items()}
        self.counts = counts
        specs, i = [], 0
        for kind in ("download", "login", "upload", "slow"):
            for k in range(counts[kind]):
                specs.append((i, kind, k))
                i += 1
        self.start = time.monotonic()
        self.deadline = self.start + a.duration
        children = []
        for p in range(a.procs):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # a child: run its share, send its counters back, leave
                os.close(r)
                code = 0
                try:
                    random.seed(os.getpid())
                    asyncio.run(self.load(specs[p::a.procs]))
                    blob = pickle.dumps((STATS.__dict__, self.max_lag))
                    with os.fdopen(w, "wb") as f:
                        f.write(blob)
                except BaseException as e:  # noqa: BLE001 - report anything, never return
                    print(f"soak: driver process failed: {e!r}", file=sys.stderr)
                    code = 3
                os._exit(code)
            os.close(w)
            children.append((pid, r))
        stop = threading.Event()
        samples = []
        sampler = threading.Thread(target=self.sample_rss, args=(stop, samples), daemon=True)
        sampler.start()
        self.max_lag = 0.0
        hard = self.deadline + GRACE + 30
        for pid, r in children:
            data = b""
            while True:
                ready, _, _ = select.select([r], [], [], max(0.0, hard - time.monotonic()))
                if not ready:
                    os.kill(pid, signal.SIGKILL)
                    STATS.fail("run", f"driver process {pid} did not finish; killed")
                    break
                piece = os.read(r, 1 << 20)
                if not piece:
                    break
                data += piece
            os.close(r)
            os.waitpid(pid, 0)
            if not data:
                STATS.fail("run", f"driver process {pid} sent no results")
                continue
            theirs, lag = pickle.loads(data)
            self.max_lag = max(self.max_lag, lag)
            for k, v in theirs.items():
                mine = getattr(STATS, k)
                if isinstance(mine, (collections.Counter, list)):
                    mine += v
                elif isinstance(mine, dict):
                    for kk, vv in v.items():
                        mine[kk] += vv
                else:
                    setattr(STATS, k, mine + v)
        self.elapsed = time.monotonic() - self.start
        stop.set()
        sampler.join()
        return samples


# ---------------------------------------------------------------------------------------------
# Afterwards: the data directory


def verify(data_dir, uploads, pid):
    problems = []
    private = os.path.join(data_dir, "private")
    tmp = os.path.join(private, ".tmp")

    def leftovers():
        found = []
        for root, _, files in os.walk(tmp):
            found += [os.path.join(root, f) for f in files
                      if not (f == "lock" and os.path.dirname(os.path.join(root, f)) != tmp)]
        return found

    # Aborted uploads are discarded as their connections close: give that a few seconds.
    for _ in range(50):
        left = leftovers()
        if not left:
            break
        time.sleep(0.1)
    for f in left:
        problems.append(f"temp file left: {os.path.relpath(f, data_dir)} ({os.path.getsize(f)} bytes)")

    db = sqlite3.connect(f"file:{os.path.join(data_dir, 'private-media.sqlite3')}?mode=ro", uri=True)
    rows = {r[0]: r[1:] for r in db.execute("SELECT id, storage, storage_key, size, sha256 FROM files")}
    try:
        pending = db.execute("SELECT COUNT(*) FROM pending_uploads").fetchone()[0]
        if pending:
            problems.append(f"{pending} rows left in pending_uploads")
    except sqlite3.Error:
        pass
    db.close()

    def sha_of(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    checked = 0
    for fid, digest, size in uploads:
        row = rows.get(fid)
        if row is None:
            problems.append(f"upload {fid}: answered 303 but has no row")
            continue
        _, key, row_size, row_sha = row
        path = os.path.join(private, key)
        if row_size != size or row_sha.lower() != digest:
            problems.append(f"upload {fid}: row says {row_size} bytes {row_sha[:12]}…, "
                            f"sent {size} bytes {digest[:12]}…")
        if not os.path.isfile(path):
            problems.append(f"upload {fid}: object {key} missing")
            continue
        got = sha_of(path)
        if got != digest:
            problems.append(f"upload {fid}: object {key} has SHA-256 {got[:12]}…, sent {digest[:12]}…")
        checked += 1
    keys = {r[1] for r in rows.values() if r[0] == "local"}
    orphans = []
    for root, dirs, files in os.walk(private):
        if os.path.abspath(root) == os.path.abspath(private):
            dirs[:] = [d for d in dirs if d != ".tmp"]
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), private)
            if rel not in keys:
                orphans.append(rel)
    for rel in orphans[:20]:
        problems.append(f"object without a row: {rel}")
    if len(orphans) > 20:
        problems.append(f"… and {len(orphans) - 20} more objects without a row")
    missing = [k for k in keys if not os.path.isfile(os.path.join(private, k))]
    for k in missing[:20]:
        problems.append(f"row without an object: {k}")
    return problems, checked, len(rows)


# ---------------------------------------------------------------------------------------------


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def report(run, samples, problems, checked, rows):
    a = run.args
    print()
    print(f"soak: {run.elapsed:.1f} s, {a.connections} connections "
          + ", ".join(f"{v} {k}" for k, v in run.counts.items()))
    print(f"{'kind':<16} {'ok':>8} {'expected':>9} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind in ["download-full", "download-range", "download", "login", "login-wrong", "upload",
                 "slow-setup", "run"]:
        ok, exp, bad = STATS.requests[kind], STATS.expected[kind], STATS.failures[kind]
        if not (ok or exp or bad):
            continue
        lat = [x * 1000 for x in STATS.latency[kind]]
        print(f"{kind:<16} {ok:>8} {exp:>9} {bad:>7} {pct(lat, .5):>8.0f} {pct(lat, .99):>8.0f} "
              f"{(max(lat) if lat else float('nan')):>8.0f}")
    print(f"slow clients (not counted as failures):")
    for k, v in sorted(STATS.slow.items()):
        print(f"  {k:<44} {v:>6}")
    print(f"traffic: {STATS.bytes_in / 2**20:.0f} MiB in, {STATS.bytes_out / 2**20:.0f} MiB out; "
          f"idle connections replaced: {STATS.reconnects}; "
          f"requests retried after a keep-alive close: {STATS.retries}"
          + (f" (quiet {min(STATS.retry_idle):.1f} s or more; "
             + ", ".join(f"{v} {k}" for k, v in STATS.retry_kinds.items()) + ")"
             if STATS.retry_idle else "")
          + "; "
          f"driver event-loop lag max {run.max_lag * 1000:.0f} ms")
    if STATS.note408:
        new = [q for r, q in STATS.note408 if not r]
        print(f"408 answers not retried: {len(STATS.note408)}, {len(new)} on new connections "
              f"(head sent {max(new or [0]):.1f} s at most after the connect began)")
    rss = [s[1] for s in samples if s[1] is not None]
    fds = [s[2] for s in samples if s[2] is not None]
    if rss:
        print(f"server RSS: start {rss[0] / 1024:.1f} MiB, peak {max(rss) / 1024:.1f} MiB, "
              f"final {rss[-1] / 1024:.1f} MiB ({len(rss)} samples every 100 ms); "
              f"open fds peak {max(fds)}")
    else:
        print("server RSS: no samples (process gone?)")
    print(f"afterwards: {checked} of {len(STATS.uploads)} uploads checked against their rows and "
          f"objects (SHA-256), {rows} rows in all")
    failures = sum(STATS.failures.values())
    for kind, examples in STATS.examples.items():
        for e in examples:
            print(f"  FAIL {kind}: {e}")
    for p in problems:
        print(f"  FAIL data: {p}")
    if rss and a.max_rss_mib and max(rss) / 1024 > a.max_rss_mib:
        problems.append("rss")
        print(f"  FAIL peak RSS above {a.max_rss_mib} MiB")
    ok = failures == 0 and not problems and (sum(STATS.requests.values()) + sum(STATS.slow.values())) > 0
    print("soak: PASS" if ok else f"soak: FAIL ({failures} request failures, {len(problems)} data problems)")
    return ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--admin-password", required=True)
    p.add_argument("--login-users", type=lambda s: s.split(","), required=True)
    p.add_argument("--staff-users", type=lambda s: s.split(","), required=True)
    p.add_argument("--user-password", required=True)
    p.add_argument("--max-upload", type=int, default=3 << 20)
    p.add_argument("--procs", type=int, default=2, help="driver processes sharing the clients")
    p.add_argument("--max-rss-mib", type=float, default=0, help="fail above this peak (0: report only)")
    p.add_argument("--only", choices=["download", "login", "upload", "slow"],
                   help="run only this kind of client (its share of CONNECTIONS)")
    a = p.parse_args()
    if a.connections < 20:
        p.error("--connections: at least 20")
    run = Run(a)
    try:
        samples = run.main()
    except SystemExit as e:
        print(f"soak: {e}", file=sys.stderr)
        return 2
    problems, checked, rows = verify(a.data_dir, STATS.uploads, a.pid)
    return 0 if report(run, samples, problems, checked, rows) else 1


if __name__ == "__main__":
    sys.exit(main())
