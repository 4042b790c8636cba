// The upload page's queue and summary, and the file page's preview, readers picker and
// replace, in headless Chromium. Called from e2e.mjs with the running app; throws on failure.
//
// Staff drops seven files (one of them empty, so refused), cancels one and sends the rest on a
// throttled network: three are on their way at a time, never more, the empty one's row turns
// red with the server's reason, leaving asks first while they run, and the summary says
// "5 stored, 1 refused, 1 cancelled". The image's page shows it
// inline; the readers picker finds paul as one types; the text file's content is replaced
// on its page, and the same id then downloads the new bytes.
// Both pages then fit a 390 px wide phone screen.
// Screenshots: docs/screenshots/upload.png (the summary) and file-detail.png.

import { join } from "node:path";

export async function detailAndUpload({ browser, base, login, shots, check }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  try {
    await login(page, base, "stella");
    await page.goto(base + "/admin/files/new");
    check(await page.locator("#file").isHidden(), "the plain file input shows beside the drop zone");
    const box = await page.locator(".dropzone").boundingBox();
    const settings = await page.locator("fieldset.settings").boundingBox();
    check(box && settings && box.y < settings.y, "the files do not come before the settings");
    check(await page.locator("fieldset.readers").isHidden(), "the readers show for the owner rule");

    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 5, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
    const dataTransfer = await page.evaluateHandle(async () => {
      const canvas = document.createElement("canvas");
      canvas.width = 480; canvas.height = 270;
      const g = canvas.getContext("2d");
      const grad = g.createLinearGradient(0, 0, 480, 270);
      grad.addColorStop(0, "#2456c7"); grad.addColorStop(1, "#1e7b34");
      g.fillStyle = grad; g.fillRect(0, 0, 480, 270);
      g.fillStyle = "#fff"; g.font = "bold 40px sans-serif"; g.fillText("Q3 chart", 40, 140);
      const png = await new Promise((done) => canvas.toBlob(done, "image/png"));
      const filler = (n, seed) => { const x = new Uint8Array(n); for (let i = 0; i < n; i++) x[i] = 97 + ((i * seed) % 26); return x; };
      const dt = new DataTransfer();
      dt.items.add(new File([png], "q3 chart.png", { type: "image/png" }));
      dt.items.add(new File([filler(700 * 1024, 7)], "notes v1.txt", { type: "text/plain" }));
      dt.items.add(new File([filler(900 * 1024, 11)], "minutes.txt", { type: "text/plain" }));
      dt.items.add(new File([new Uint8Array(0)], "empty.txt", { type: "text/plain" }));
      dt.items.add(new File([filler(600 * 1024, 13)], "agenda.txt", { type: "text/plain" }));
      dt.items.add(new File([filler(800 * 1024, 17)], "budget.txt", { type: "text/plain" }));
      dt.items.add(new File([filler(500 * 1024, 19)], "plan.txt", { type: "text/plain" }));
      return dt;
    });
    await page.dispatchEvent(".dropzone", "drop", { dataTransfer });
    await page.locator("li.upload").nth(6).waitFor();
    check((await page.locator("li.upload .name").nth(1).textContent()).includes("(700 KiB)"), "the size is not written as the server writes it");
    // Cancel one before it starts: it is not sent.
    await page.getByRole("button", { name: "Cancel agenda.txt" }).click();
    // Counted in the page, every 10 ms: a slow round trip from here could miss the moment.
    await page.evaluate(() => {
      window.mostSending = 0;
      setInterval(() => {
        window.mostSending = Math.max(window.mostSending, document.querySelectorAll("li.upload.sending").length);
      }, 10);
    });
    await page.getByRole("button", { name: "Upload 6 files" }).click();
    const asksBeforeLeaving = () => page.evaluate(() => { const e = new Event("beforeunload", { cancelable: true }); window.dispatchEvent(e); return e.defaultPrevented; });
    check(await asksBeforeLeaving(), "leaving while files are on their way does not ask");
    const summary = page.locator("p.summary");
    await summary.waitFor({ state: "visible", timeout: 60000 });
    check(!(await asksBeforeLeaving()), "leaving after the uploads still asks");
    const most = await page.evaluate(() => window.mostSending);
    // Six sent: three at a time, no more, and the rest follow as those finish.
    check(most === 3, `${most} uploads were on their way at once, not 3`);
    const words = await summary.textContent();
    check(words.startsWith("5 stored, 1 refused, 1 cancelled"), `the summary says ${words}`);
    const refused = page.locator("li.upload.refused");
    check((await refused.count()) === 1, "one row is red");
    check((await refused.textContent()).includes("the file is empty"), "the refused row lacks the server's reason");
    check(await page.getByRole("button", { name: "Upload", exact: true }).isEnabled(), "the button stays disabled when nothing is left");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await page.screenshot({ path: join(shots, "upload.png"), fullPage: true });

    // The image's page: an inline preview.
    await page.locator("li.upload.stored", { hasText: "q3 chart.png" }).getByRole("link", { name: "details" }).click();
    await page.waitForURL(/\/admin\/files\/[^/]+$/);
    const img = page.locator("section.preview img");
    await img.waitFor();
    await page.waitForFunction(() => { const i = document.querySelector("section.preview img"); return i && i.complete && i.naturalWidth === 480; });

    // A PDF's page frames it as its preview: the frame shows the download, nothing refuses it.
    const refusals = [];
    page.on("console", (m) => { if (/refused|blocked/i.test(m.text())) refusals.push(m.text()); });
    const imagePage = page.url();
    const csrf = await page.locator("input[name=csrf_token]").first().inputValue();
    const stored = await page.request.post(base + "/admin/files", {
      multipart: {
        csrf_token: csrf, title: "Contract", access: "staff",
        file: { name: "contract.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n") },
      },
    });
    check(stored.ok() && /\/admin\/files\/[^/]+$/.test(stored.url()), `the PDF upload answered ${stored.status()} at ${stored.url()}`);
    await page.goto(stored.url());
    const pdfId = new URL(stored.url()).pathname.split("/").pop();
    const frameUrl = `${base}/files/${pdfId}/download?inline=1`;
    await page.locator("section.preview iframe").waitFor();
    await page.waitForFunction((url) => {
      const f = document.querySelector("section.preview iframe");
      try { return f && f.contentWindow.location.href === url; } catch { return false; }
    }, frameUrl, { timeout: 10000 }).catch(() => {});
    const framed = page.frames().find((f) => f.parentFrame() === page.mainFrame());
    check(framed && framed.url() === frameUrl, `the PDF frame is at ${framed && framed.url()}, not ${frameUrl}`);
    check(refusals.length === 0, `the browser refused the preview: ${refusals.join(" | ")}`);
    await page.goto(imagePage);

    // The readers picker: hidden for other rules, search-as-you-type for the listed users.
    check(await page.locator("fieldset.readers").isHidden(), "the readers show for the owner rule");
    await page.getByLabel("Who may download").selectOption("users");
    await page.getByLabel("Search users to add").fill("pa");
    await page.getByRole("button", { name: "Add paul" }).click();
    check((await page.getByLabel("Readers").inputValue()) === "paul", "the picker did not add paul");
    await page.getByRole("button", { name: "Copy download link" }).click();
    await page.waitForFunction(() => [...document.querySelectorAll(".copied")].some((s) => s.textContent.length > 0));
    await page.screenshot({ path: join(shots, "file-detail.png"), fullPage: true });
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForSelector("p.message.ok");
    check((await page.content()).includes("the owner and the listed users: paul") || (await page.getByLabel("Readers").inputValue()) === "paul", "paul was not saved as a reader");

    // Replace the text file's content: same id, new bytes.
    await page.goto(base + "/admin/files?q=notes%20v1");
    await page.getByRole("link", { name: "notes v1.txt" }).first().click();
    await page.waitForURL(/\/admin\/files\/[^/]+$/);
    const id = new URL(page.url()).pathname.split("/").pop();
    const fresh = Buffer.from("the second version of the notes\n");
    await page.getByLabel("New content").setInputFiles({ name: "notes v2.txt", mimeType: "text/plain", buffer: fresh });
    await Promise.all([page.waitForURL((url) => url.pathname === `/admin/files/${id}`), page.getByRole("button", { name: "Replace" }).click()]);
    check((await page.content()).includes("Replaced the content"), "no word of the replacement");
    const got = await page.request.get(`${base}/files/${id}/download`);
    check(got.status() === 200, `the replaced file answered ${got.status()}`);
    check((await got.body()).equals(fresh), "the download is not the new content");

    // On a phone both pages fit the screen's width: nothing to scroll sideways.
    await page.setViewportSize({ width: 390, height: 800 });
    for (const path of [`/admin/files/${id}`, "/admin/files/new"]) {
      await page.goto(base + path);
      const [wide, screen] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      check(wide <= screen, `${path} is ${wide} px wide on a ${screen} px screen`);
    }
  } finally {
    await context.close();
  }
}
