// The file lists in a real browser: staff uploads a few kinds of file, sees their type labels
// and local times, filters by type (the filter survives a sort), selects rows (and "select
// all on this page") and deletes two through the confirmation page; then the same list at
// phone width (390 px): every stacked value has its label, the sort menu works, nothing
// overflows sideways. Screenshots: docs/screenshots/admin-list.png and admin-list-phone.png.

import { join } from "node:path";

// The first bytes of each kind: enough for the server's sniffing.
// A real 32×24 PNG (valid CRCs), so the server can make its thumbnail.
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d494844520000002000000018080200000014316863000000274944415478da6338a1a141122251f90986510b462d18b560d482510b462d18b560d482a161010048ec482e68f7aaf80000000049454e44ae426082",
  "hex",
);
const PDF = Buffer.from("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n");
const ZIP = Buffer.concat([Buffer.from("PK\x03\x04\x14\x00\x00\x00\x08\x00", "latin1"), Buffer.alloc(24)]);

async function upload(page, base, name, buffer, access, extra = {}) {
  await page.goto(base + "/admin/files/new");
  const token = await page.locator("input[name=csrf_token]").first().inputValue();
  const form = new FormData();
  form.append("csrf_token", token);
  if (extra.title) form.append("title", extra.title);
  form.append("access", access);
  if (extra.owner) form.append("owner", extra.owner);
  for (const user of extra.users || []) form.append("users", user);
  form.append("file", new Blob([buffer]), name);
  const response = await page.request.post(base + "/admin/files", { multipart: form, maxRedirects: 0 });
  if (response.status() !== 303) throw new Error(`upload of ${name} answered ${response.status()}`);
}

export async function checkLists({ browser, base, login, shots, check }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: "Pacific/Auckland", locale: "en-NZ" });
  const page = await context.newPage();
  await login(page, base, "stella");
  await page.goto(base + "/admin/files");
  // What the test before this one left in the list.
  const earlier = await page.locator("table.files tbody tr").count();
  await upload(page, base, "Invoice-March.pdf", PDF, "users", { owner: "paul", users: ["root"] });
  await upload(page, base, "holiday.png", PNG, "authenticated", { title: "Holiday photo" });
  await upload(page, base, "letter.docx", ZIP, "owner", { owner: "paul" });
  await upload(page, base, "backup.zip", ZIP, "staff");
  await upload(page, base, "Überweisung April.txt", Buffer.from("Betrag: 12 EUR\n"), "staff");
  await upload(page, base, "notes.txt", Buffer.from("a line of notes\n"), "staff");

  await page.goto(base + "/admin/files");
  const row = (title) => page.locator("table.files tbody tr", { hasText: title });
  // Thumbnails: the image's small one, loaded through its access check; a type icon otherwise.
  const thumb = row("Holiday photo").locator("img.thumb");
  check((await thumb.getAttribute("alt")) === "holiday.png" && (await thumb.getAttribute("loading")) === "lazy", "the thumbnail's alt or loading is wrong");
  await thumb.scrollIntoViewIfNeeded();
  await page.waitForFunction(() => { const img = document.querySelector("table.files img.thumb"); return img && img.complete && img.naturalWidth > 0; }, null, { timeout: 10000 });
  check((await row("Invoice-March.pdf").locator(".type-icon.type-document").count()) === 1, "a PDF has no type icon");
  await page.goto(base + "/files");
  const userThumb = page.locator("table.files tbody tr", { hasText: "Holiday photo" }).locator("img.thumb");
  await userThumb.scrollIntoViewIfNeeded();
  await page.waitForFunction(() => [...document.querySelectorAll("table.files img.thumb")].some((img) => img.complete && img.naturalWidth > 0), null, { timeout: 10000 });
  await page.goto(base + "/admin/files");
  check((await row("letter.docx").locator("td[data-label=Type]").textContent()).includes("Word document"), "a .docx is not a Word document");
  check((await row("backup.zip").locator("td[data-label=Type]").textContent()).includes("ZIP archive"), "a .zip is not a ZIP archive");
  check((await row("Holiday photo").locator(".name").textContent()) === "holiday.png", "the name under a differing title is missing");
  check((await row("notes.txt").locator(".name").count()) === 0, "a name equal to its title is shown twice");
  check((await row("Invoice-March.pdf").locator("td[data-label=Access]").textContent()).includes("paul, root"), "the access column does not name the readers");
  const time = row("notes.txt").locator("time");
  await page.waitForFunction(() => document.querySelector("table.files time[data-localised]"));
  const iso = await time.getAttribute("datetime");
  const shown = await time.textContent();
  check(!shown.includes("UTC") && (await time.getAttribute("title")).endsWith("UTC"), `the time was not localised: ${shown}`);
  const expected = new Intl.DateTimeFormat("en-NZ", { dateStyle: "medium", timeStyle: "short", timeZone: "Pacific/Auckland" }).format(new Date(iso));
  check(shown === expected, `local time ${shown}, expected ${expected}`);
  // Short values stay whole: no "Previ ew", no "Down load".
  const wrap = await row("notes.txt").locator("td[data-label=Size]").evaluate((td) => getComputedStyle(td).whiteSpace);
  check(wrap === "nowrap", `sizes may break (${wrap})`);
  await page.screenshot({ path: join(shots, "admin-list.png") });

  // A filter, then a sort: the filter stays.
  await page.getByLabel("Type", { exact: true }).selectOption("image");
  await Promise.all([page.waitForURL(/type=image/), page.getByRole("button", { name: "Apply", exact: true }).first().click()]);
  check((await page.locator("table.files tbody tr").count()) === 1, "the image filter kept other files");
  await Promise.all([page.waitForURL(/sort=name/), page.getByRole("link", { name: "Title" }).click()]);
  check(new URL(page.url()).searchParams.get("type") === "image", "sorting dropped the filter");
  await page.getByRole("link", { name: "Clear search and filters" }).click();
  await page.waitForURL((url) => !url.search.includes("type="));
  check((await page.locator("table.files tbody tr").count()) === earlier + 6, "clearing the filters did not show every file");

  // Select all, then none, then two rows; delete those two.
  const selectAll = page.getByLabel("Select all on this page");
  check(await selectAll.isVisible(), "the select-all box is hidden with JavaScript on");
  check(!(await page.locator(".select-all-link").isVisible()), "the no-script select-all link shows with JavaScript on");
  await selectAll.check();
  check((await page.locator("input[name=ids]:checked").count()) === earlier + 6, "select all missed rows");
  await selectAll.uncheck();
  check((await page.locator("input[name=ids]:checked").count()) === 0, "unselect all left rows");
  check(await page.locator("button[data-bulk-apply]").isDisabled(), "Apply is enabled with nothing selected");
  await page.getByLabel("Select notes.txt").check();
  await page.getByLabel("Select backup.zip").check();
  check((await page.locator("[data-selected-count]").textContent()) === "2 files selected", "the selection count is wrong");
  await page.getByLabel("With the selected files").selectOption("delete");
  await Promise.all([page.waitForURL(/\/admin\/files\/bulk\?/), page.locator("button[data-bulk-apply]").click()]);
  const confirm = await page.content();
  check(confirm.includes("Delete 2 files?") && confirm.includes("notes.txt") && confirm.includes("backup.zip"), "the confirmation does not list what goes");
  await Promise.all([page.waitForURL(/\/admin\/files\?/), page.getByRole("button", { name: "Yes, delete all 2" }).click()]);
  check((await page.locator("p.message.ok").textContent()).includes("Deleted 2 files."), "no count after the bulk delete");
  check((await page.locator("table.files tbody tr").count()) === earlier + 4, "the bulk delete left rows");
  check((await row("notes.txt").count()) === 0 && (await row("backup.zip").count()) === 0, "a deleted file is still listed");
  await context.close();

  // At phone width: labelled values, a sort menu, nothing wider than the screen.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await login(small, base, "stella");
  await small.goto(base + "/admin/files");
  check(!(await small.locator("table.files thead").isVisible()), "the table head shows on a phone");
  const label = await small.locator("table.files tbody tr").first().locator("td[data-label=Size]")
    .evaluate((td) => getComputedStyle(td, "::before").content);
  check(label.includes("Size"), `a stacked value has no label (${label})`);
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the phone layout is ${overflow} px too wide`);
  await small.getByLabel("Sort").selectOption("-size");
  await Promise.all([small.waitForURL(/sort=-size/), small.getByRole("button", { name: "Apply", exact: true }).first().click()]);
  check((await small.locator("table.files tbody tr").count()) === earlier + 4, "sorting on a phone lost rows");
  await small.screenshot({ path: join(shots, "admin-list-phone.png"), fullPage: true });
  // The reader's list at phone width, too.
  await small.goto(base + "/files?type=document");
  const docs = await small.locator("table.files tbody tr").count();
  check(docs === 3, `the document filter on /files shows ${docs} rows`);
  await phone.close();
}
