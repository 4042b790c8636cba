// End-to-end in a real browser: Debian's headless Chromium driven by playwright-core.
//
// Starts the app (target/debug/private-media, or $PRIVATE_MEDIA_BIN) on 127.0.0.1 with a
// fresh data dir, then: staff logs in, drops two files on the upload page, waits for both
// progress bars, sees both in the list and shares one with a plain user; the plain user
// logs in, downloads that one through its link (bytes compared) and gets 403 on the other;
// staff makes a share link for the other file (copied with the button), and a fresh browser
// without cookies opens it and downloads the file; the superuser finds that download and the
// link in the audit log.
// Screenshots of the login, upload (mid-progress), admin list and user list pages go to
// docs/screenshots/. Exits non-zero on any failure.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { accountChecks } from "./accounts.mjs";
import { checkLists } from "./lists.mjs";
import { detailAndUpload } from "./detail.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.PRIVATE_MEDIA_BIN || join(root, "target/debug/private-media");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = join(root, "docs/screenshots");
const PASSWORD = "correct horse battery staple";
const SIZE_A = 6 * 1024 * 1024;
const SIZE_B = 2 * 1024 * 1024;

// The same bytes on both sides: generated here and in the page, never shipped across.
function bytesA(n) { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) % 251; return b; }

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const dataDir = mkdtempSync(join(tmpdir(), "private-media-e2e-"));
const env = { ...process.env, PRIVATE_MEDIA_DATA_DIR: dataDir, PRIVATE_MEDIA_ADMIN_PASSWORD: PASSWORD, PRIVATE_MEDIA_LOG: "info" };
for (const key of Object.keys(env)) {
  if ((key.startsWith("PRIVATE_MEDIA_") && !["PRIVATE_MEDIA_DATA_DIR", "PRIVATE_MEDIA_ADMIN_PASSWORD", "PRIVATE_MEDIA_LOG"].includes(key)) || key === "DATABASE_URL") delete env[key];
}

function cli(args) {
  const run = spawnSync(bin, args, { env, cwd: dataDir, input: PASSWORD + "\n", encoding: "utf8" });
  check(run.status === 0, `private-media ${args.join(" ")} failed: ${run.stderr}`);
}

function startServer() {
  return new Promise((resolveStart, rejectStart) => {
    const server = spawn(bin, ["serve", "--bind", "127.0.0.1:0"], { env, cwd: dataDir, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const timer = setTimeout(() => rejectStart(new Error("the server did not start:\n" + log)), 30000);
    server.stderr.on("data", (chunk) => {
      log += chunk;
      const found = /serving on (http:\/\/127\.0\.0\.1:\d+)\//.exec(log);
      if (found) { clearTimeout(timer); resolveStart({ server, base: found[1] }); }
    });
    server.on("exit", (code) => rejectStart(new Error(`the server exited (${code}):\n${log}`)));
  });
}

async function login(page, base, username) {
  await page.goto(base + "/login");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/login")), page.getByRole("button", { name: "Log in" }).click()]);
}

let server;
let browser;
let failed = false;
try {
  cli(["migrate"]);
  cli(["user", "add", "stella", "--staff", "--password-stdin"]);
  cli(["user", "add", "paul", "--password-stdin"]);
  cli(["user", "add", "root", "--superuser", "--password-stdin"]);
  const started = await startServer();
  server = started.server;
  const base = started.base;
  mkdirSync(shots, { recursive: true });

  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const staffContext = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await staffContext.newPage();

  // Login page.
  await page.goto(base + "/login");
  await page.screenshot({ path: join(shots, "login.png") });
  await login(page, base, "stella");

  // Upload: drop two files, slowed down so the progress can be seen.
  await page.goto(base + "/admin/files/new");
  await page.getByLabel("Who may download").selectOption("owner");
  const cdp = await staffContext.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 5, downloadThroughput: -1, uploadThroughput: 2 * 1024 * 1024 });
  const dataTransfer = await page.evaluateHandle(({ sizeA, sizeB }) => {
    const make = (n, a, b) => { const x = new Uint8Array(n); for (let i = 0; i < n; i++) x[i] = (i * a + b) % 251; return x; };
    const dt = new DataTransfer();
    dt.items.add(new File([make(sizeA, 31, 7)], "quarterly report.bin", { type: "application/octet-stream" }));
    dt.items.add(new File([make(sizeB, 17, 3)], "board minutes.bin", { type: "application/octet-stream" }));
    return dt;
  }, { sizeA: SIZE_A, sizeB: SIZE_B });
  await page.dispatchEvent(".dropzone", "drop", { dataTransfer });
  await page.locator("li.upload").nth(1).waitFor();
  await page.getByRole("button", { name: "Upload 2 files" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("li.upload progress")].some((p) => p.value > 5 && p.value < 95));
  await page.screenshot({ path: join(shots, "upload.png"), fullPage: true });
  await page.waitForFunction(() => document.querySelectorAll("li.upload.stored").length === 2, null, { timeout: 60000 });
  check((await page.locator("li.upload.refused").count()) === 0, "an upload was refused");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

  // Both in the admin list.
  await page.goto(base + "/admin/files");
  const list = await page.content();
  check(list.includes("quarterly report.bin") && list.includes("board minutes.bin"), "the list lacks an upload");
  await page.screenshot({ path: join(shots, "admin-list.png") });

  // Share the report with paul.
  await page.getByRole("link", { name: "quarterly report.bin" }).click();
  const reportUrl = new URL(page.url());
  const reportId = reportUrl.pathname.split("/").pop();
  await page.getByLabel("Who may download").selectOption("users");
  await page.getByLabel("Readers").fill("paul");
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForSelector("p.message.ok");
  await page.goto(base + "/admin/files");
  await page.getByRole("link", { name: "board minutes.bin" }).click();
  const minutesId = new URL(page.url()).pathname.split("/").pop();

  // Share the minutes with someone who has no account: the link is shown once, with a copy
  // button that works without a reload.
  await page.getByLabel("Download limit (empty: no limit)").fill("2");
  await page.getByLabel("Label (for you: who it is for)").fill("for the auditor");
  await page.getByRole("button", { name: "Make a link" }).click();
  const linkField = page.locator("#new-link-url");
  await linkField.waitFor();
  const shareUrl = await linkField.inputValue();
  check(/^http:\/\/127\.0\.0\.1:\d+\/s\/[A-Za-z0-9_-]{43}$/.test(shareUrl), `the share link ${shareUrl}`);
  const copy = page.getByRole("button", { name: "Copy link" });
  check(await copy.isVisible(), "the copy button is hidden with JavaScript on");
  await copy.click();
  await page.waitForFunction(() => document.querySelector(".new-link .copied").textContent.length > 0);
  await page.screenshot({ path: join(shots, "share.png"), fullPage: true });
  check((await page.content()).includes("for the auditor"), "the link is not listed");

  // Log out.
  await Promise.all([page.waitForURL(/\/login/), page.getByRole("button", { name: "Log out" }).click()]);

  // paul: sees the report only, downloads it, is refused the minutes.
  await login(page, base, "paul");
  await page.goto(base + "/files");
  const files = await page.content();
  check(files.includes("quarterly report.bin"), "paul does not see the shared file");
  check(!files.includes("board minutes.bin"), "paul sees a file that was not shared with him");
  await page.screenshot({ path: join(shots, "user-list.png") });
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "quarterly report.bin" }).click()]);
  const got = readFileSync(await download.path());
  const want = Buffer.from(bytesA(SIZE_A));
  check(got.equals(want), `the downloaded bytes differ (${got.length} vs ${want.length})`);
  check(download.suggestedFilename() === "quarterly report.bin", `suggested name ${download.suggestedFilename()}`);
  const refused = await page.request.get(`${base}/files/${minutesId}/download`, { maxRedirects: 0 });
  check(refused.status() === 403, `the other file answered ${refused.status()}`);
  const allowed = await page.request.get(`${base}/files/${reportId}/download`, { maxRedirects: 0 });
  check(allowed.status() === 200, `the shared file answered ${allowed.status()}`);

  // A stranger (a fresh context, no cookies) opens the share link and downloads the minutes.
  const strangerContext = await browser.newContext({ viewport: { width: 390, height: 800 }, acceptDownloads: true });
  const stranger = await strangerContext.newPage();
  const landing = await stranger.goto(shareUrl);
  check(landing.status() === 200, `the share page answered ${landing.status()}`);
  check(landing.headers()["referrer-policy"] === "no-referrer", "the share page may send its URL on");
  check((await stranger.content()).includes("board minutes.bin"), "the share page does not name the file");
  await stranger.screenshot({ path: join(shots, "share-landing.png"), fullPage: true });
  const [shared] = await Promise.all([stranger.waitForEvent("download"), stranger.getByRole("link", { name: "Download" }).click()]);
  const gotShared = readFileSync(await shared.path());
  const make = (n, a, b) => { const x = Buffer.alloc(n); for (let i = 0; i < n; i++) x[i] = (i * a + b) % 251; return x; };
  check(gotShared.equals(make(SIZE_B, 17, 3)), `the shared download differs (${gotShared.length} bytes)`);
  check(shared.suggestedFilename() === "board minutes.bin", `shared name ${shared.suggestedFilename()}`);
  await strangerContext.close();

  // The superuser reads the audit log: the stranger's download through the link is there.
  const adminContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const admin = await adminContext.newPage();
  await login(admin, base, "root");
  await admin.goto(base + "/admin/audit");
  await admin.waitForFunction(() => document.body.textContent.includes("share"), null, { timeout: 10000 }).catch(() => {});
  const audit = await admin.content();
  check(audit.includes("board minutes.bin") && audit.includes("share"), "the audit log lacks the share download");
  check(audit.includes("link_created"), "the audit log lacks the link");
  await admin.screenshot({ path: join(shots, "audit.png"), fullPage: false });
  await adminContext.close();
  await accountChecks({ browser, base, shots, cli, check, password: PASSWORD });
  await checkLists({ browser, base, login, shots, check });
  await detailAndUpload({ browser, base, login, shots, check });
  console.log("browser test passed: upload with progress, listing, sharing, download, refusal, share link");
} catch (error) {
  failed = true;
  console.error("browser test FAILED:", error);
} finally {
  if (browser) await browser.close();
  if (server) server.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
