// The account page in a real browser: a user changes their own password (a wrong current
// password first, shown beside its field), logs out, logs in with the new password, and the
// old one fails; the skip link is the first Tab stop; the superuser's user list; the account
// page in the dark colour scheme at phone width. Screenshots: account.png, users.png,
// account-dark.png in docs/screenshots/.

import { join } from "node:path";

const NEW_PASSWORD = "a much better passphrase";

async function logIn(page, base, username, password) {
  await page.goto(base + "/login");
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForLoadState("load");
}

async function logOut(page) {
  await Promise.all([page.waitForURL(/\/login/), page.getByRole("button", { name: "Log out" }).click()]);
}

export async function accountChecks({ browser, base, shots, cli, check, password }) {
  cli(["user", "add", "alice", "--password-stdin"]);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await logIn(page, base, "alice", password);
  check(!new URL(page.url()).pathname.startsWith("/login"), "alice could not log in");

  // The first Tab stop skips the header.
  await page.goto(base + "/account");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.classList.contains("skip-link")), "the skip link is not the first Tab stop");
  check(await page.locator(".skip-link").isVisible(), "the focused skip link is not visible");
  check((await page.locator('nav a[aria-current="page"]').getAttribute("href")) === "/account", "the account link is not marked current");

  // A wrong current password: the form again, the error beside the field.
  await page.locator("#current_password").fill("not my password");
  await page.locator("#new_password").fill(NEW_PASSWORD);
  await page.locator("#new_password_again").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await page.locator("#current_password-error").waitFor();
  check((await page.locator("#current_password").getAttribute("aria-invalid")) === "true", "the wrong field is not marked invalid");

  // The right one: changed, still logged in here.
  await page.locator("#current_password").fill(password);
  await page.locator("#new_password").fill(NEW_PASSWORD);
  await page.locator("#new_password_again").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await page.waitForSelector("p.message.ok");
  check((await page.content()).includes("Your password was changed."), "no confirmation of the change");
  await page.screenshot({ path: join(shots, "account.png"), fullPage: true });

  // Out, in with the new password, out, and the old one fails.
  await logOut(page);
  await logIn(page, base, "alice", NEW_PASSWORD);
  check(!new URL(page.url()).pathname.startsWith("/login"), "the new password does not log in");
  await logOut(page);
  await logIn(page, base, "alice", password);
  check(new URL(page.url()).pathname.startsWith("/login"), "the old password still logs in");
  check((await page.content()).includes("Please enter a correct username and password."), "no message for the old password");
  await context.close();

  // The superuser's user list, searched.
  const adminContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const admin = await adminContext.newPage();
  await logIn(admin, base, "root", password);
  await admin.goto(base + "/admin/users");
  check((await admin.content()).includes("alice"), "alice is not in the user list");
  await admin.screenshot({ path: join(shots, "users.png"), fullPage: true });
  await admin.getByLabel("Search by username").fill("ali");
  await admin.getByRole("button", { name: "Search" }).click();
  await admin.waitForURL(/q=ali/);
  const found = await admin.locator("table.users tbody tr").count();
  check(found === 1, `the search for "ali" found ${found} rows`);
  await adminContext.close();

  // Dark scheme at phone width: the page follows it.
  const dark = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  const phone = await dark.newPage();
  await logIn(phone, base, "alice", NEW_PASSWORD);
  await phone.goto(base + "/account");
  const background = await phone.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  check(background === "rgb(20, 23, 28)", `the dark scheme's background is ${background}`);
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `the account page is ${width} px wide on a 390 px phone`);
  await phone.screenshot({ path: join(shots, "account-dark.png"), fullPage: true });
  await dark.close();
}
