// The main pages at a phone's and a desktop's width: no sideways scrolling, and a
// screenshot of each; and a form used from the keyboard alone.
"use strict";

const { DEMO_PASSWORD, VIEWPORTS, check, context, equal, noHorizontalOverflow, screenshot, step } = require("./lib");

const CONSUMER = "demo@demo.tollgate.dev";
const PUBLISHER = "publisher@demo.tollgate.dev";

/** Logs in with the keyboard only: Tab to the email field, type, Tab, type, Enter. */
async function keyboardLogIn(page, email) {
  await page.goto("/login");
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  let presses = 0;
  while ((await page.evaluate(() => document.activeElement && document.activeElement.id)) !== "login-email") {
    check(++presses <= 30, "the email field is not reachable with Tab");
    await page.keyboard.press("Tab");
  }
  await page.keyboard.type(email);
  await page.keyboard.press("Tab");
  equal(await page.evaluate(() => document.activeElement.id), "login-password", "Tab moves to the password");
  await page.keyboard.type(DEMO_PASSWORD);
  await Promise.all([page.waitForURL(/\/dashboard/), page.keyboard.press("Enter")]);
  check((await page.locator("[data-testid=signed-in-as]").count()) === 1, "Enter submitted the log-in form");
}

/** Visits each of `pages` ([name, path]), checks it and photographs it as `{name}-{size}`. */
async function visit(page, size, pages) {
  for (const [name, path] of pages) {
    const response = await page.goto(path);
    equal(response.status(), 200, `${name} (${path})`);
    await screenshot(page, `${name}-${size}`);
    await noHorizontalOverflow(page, `${name} at ${size} (${path})`);
  }
}

module.exports = async function layout(browser) {
  for (const [size, viewport] of Object.entries(VIEWPORTS)) {
    await step(`pages at ${size} width (${viewport.width} px)`, async () => {
      const consumer = await context(browser, viewport);
      const page = await consumer.newPage();
      await keyboardLogIn(page, CONSUMER);
      const echo = await page.locator("[data-testid=my-agent-link]", { hasText: "Echo" }).first().getAttribute("href");
      const usage = new URL(echo, "http://x").pathname;
      await visit(page, size, [
        ["store", "/store"],
        ["agent", "/agents/summarizer"],
        ["agent-integration", "/agents/summarizer?tab=integration"],
        ["agent-reviews", "/agents/release-notes?tab=reviews"],
        ["dashboard", "/dashboard"],
        ["usage-details", `${usage}?tab=details`],
        ["usage-settings", `${usage}?tab=settings`],
        ["audit", `${usage}?tab=audit`],
        ["billing", "/billing"],
        ["team", "/team"],
        ["notifications", "/notifications"],
        ["settings", "/settings"],
      ]);
      // The consumer's team, chosen with the header's organization switcher.
      await page.goto("/team");
      const team = await page.locator("#org-switch option", { hasText: "Acme Robotics" }).getAttribute("value");
      await Promise.all([page.waitForNavigation(), page.selectOption("#org-switch", team)]);
      check((await page.locator("[data-testid=signed-in-as]").count()) === 1, "still signed in");
      await visit(page, size, [
        ["team-members", "/team"],
        ["team-billing", "/billing"],
      ]);
      await consumer.close();

      const publisher = await context(browser, viewport);
      const pub = await publisher.newPage();
      await keyboardLogIn(pub, PUBLISHER);
      await visit(pub, size, [
        ["publisher", "/publisher"],
        ["publisher-agent", "/publisher/agents/summarizer"],
        ["publisher-version", "/publisher/agents/summarizer/versions/new"],
      ]);
      await publisher.close();

      const visitor = await context(browser, viewport);
      await visit(await visitor.newPage(), size, [
        ["login", "/login"],
        ["signup", "/signup"],
        ["store-visitor", "/store?page=2"],
      ]);
      await visitor.close();
    });
  }
};
