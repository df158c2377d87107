// The main pages at a phone's and a desktop's width: no sideways scrolling, and a
// screenshot of each (an error page, an invitation and the publisher's new-agent form
// too); a form used from the keyboard alone; the org switcher, which switches only when
// asked; and the demo's A2A agents, which say they cannot be called here yet.
"use strict";

const {
  DEMO_PASSWORD,
  VIEWPORTS,
  check,
  checkSecurityHeaders,
  context,
  equal,
  noHorizontalOverflow,
  screenshot,
  step,
  text,
} = require("./lib");

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
async function visit(page, size, pages, status = 200) {
  for (const [name, path] of pages) {
    const response = await page.goto(path);
    equal(response.status(), status, `${name} (${path})`);
    checkSecurityHeaders(response, path);
    await screenshot(page, `${name}-${size}`);
    await noHorizontalOverflow(page, `${name} at ${size} (${path})`);
  }
}

/** The team's invitation page: the demo consumer invites someone, then opens the link. */
async function invitation(page, size) {
  await page.goto("/team");
  await page.fill("[data-testid=invite-email]", `guest-${size}-${Date.now()}@example.com`);
  await Promise.all([page.waitForURL(/shown=/), page.click("[data-testid=invite-form] button[type=submit]")]);
  const link = await text(page, "[data-testid=invite-link-value]");
  await visit(page, size, [["invitation", new URL(link).pathname]]);
  check((await page.locator("[data-testid=accept-form]").count()) === 1, "the invitation can be accepted");
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
      // An error page, signed in: the layout stays.
      await visit(page, size, [["error", "/agents/no-such-agent"]], 404);
      check((await page.locator("[data-testid=error-page]").count()) === 1, "the error page");
      check((await page.locator("[data-testid=nav-dashboard]").count()) === 1, "with the navigation");
      // An A2A agent of the demo: no code that would fail.
      await visit(page, size, [["agent-a2a", "/agents/research-assistant?tab=integration"]]);
      check((await page.locator("[data-panel=integration] [data-testid=not-callable]").count()) === 1, "A2A: not callable yet");
      equal(await page.locator("[data-testid=snippet-curl]").count(), 0, "A2A: no snippet");
      // The consumer's team, chosen with the header's organization switcher: choosing an
      // option does nothing until Switch is pressed.
      await page.goto("/team");
      const team = await page.locator("#org-switch option", { hasText: "Acme Robotics" }).getAttribute("value");
      await page.selectOption("#org-switch", team);
      await page.waitForTimeout(300);
      check(new URL(page.url()).pathname === "/team" && !page.url().includes("notice="), "selecting does not switch");
      await Promise.all([page.waitForURL(/notice=switched/), page.click("[data-testid=org-submit]")]);
      check((await page.locator("[data-testid=signed-in-as]").count()) === 1, "still signed in");
      await visit(page, size, [
        ["team-members", "/team"],
        ["team-billing", "/billing"],
      ]);
      await invitation(page, size);
      await consumer.close();

      const publisher = await context(browser, viewport);
      const pub = await publisher.newPage();
      await keyboardLogIn(pub, PUBLISHER);
      await visit(pub, size, [
        ["publisher", "/publisher"],
        ["publisher-agent", "/publisher/agents/summarizer"],
        ["publisher-version", "/publisher/agents/summarizer/versions/new"],
        ["publisher-new-agent", "/publisher/new"],
      ]);
      await publisher.close();

      const visitor = await context(browser, viewport);
      await visit(await visitor.newPage(), size, [
        ["login", "/login"],
        ["signup", "/signup"],
        ["store-visitor", "/store?page=2"],
      ]);
      await visit(await visitor.newPage(), size, [["error-visitor", "/no/such/page"]], 404);
      await visitor.close();
    });
  }
};
