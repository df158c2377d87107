// The consumer's journey: sign up, find an agent in the store (search, a filter, the
// sort, pagination), read its six tabs, install it, create a key, have the Rust test call
// the agent through the gateway with that key, find the calls on the dashboard, the usage
// chart and the audit log (with a row's details), export the audit as CSV, revoke the key
// and see the next call refused; then switch the theme.
"use strict";

const fs = require("node:fs");
const { ask, check, context, equal, eventually, number, step, text, unique } = require("./lib");

/** The slugs of the store cards on the page. */
async function cardSlugs(page) {
  return page.locator("[data-testid=agent-card]").evaluateAll((cards) => cards.map((c) => c.dataset.slug));
}

/** The ratings the store cards show, in order (an agent without reviews counts as 0). */
async function cardRatings(page) {
  const shown = await page.locator("[data-testid=agent-card] .stats > span:first-child").allTextContents();
  return shown.map((t) => {
    const m = t.match(/(\d\.\d)/);
    return m ? Number(m[1]) : 0;
  });
}

async function store(page) {
  await step("store: pages of 12", async () => {
    await page.goto("/store");
    const first = await cardSlugs(page);
    equal(first.length, 12, "cards on the first page");
    const total = number(await text(page, "[data-testid=store-total]"));
    check(total > 12, `more than one page of agents (${total})`);
    await Promise.all([page.waitForURL(/page=2/), page.click("[data-testid=page-next]")]);
    const second = await cardSlugs(page);
    equal(second.length, total - 12, "cards on the second page");
    check(!second.some((s) => first.includes(s)), "the second page shows other agents");
    await Promise.all([page.waitForURL((u) => !/page=2/.test(u.search)), page.click("[data-testid=page-prev]")]);
    equal((await cardSlugs(page)).join(), first.join(), "back on the first page");
  });

  await step("store: a filter", async () => {
    await page.fill("#store-category", "security");
    await Promise.all([page.waitForURL(/category=security/), page.click("#store-filters .actions button")]);
    const slugs = await cardSlugs(page);
    check(slugs.length >= 1 && slugs.length < 12, `security agents only: ${slugs}`);
    for (const by of await page.locator("[data-testid=agent-card] .by").allTextContents()) {
      check(by.includes("security"), `a card outside the category: ${by}`);
    }
    await Promise.all([page.waitForURL((u) => u.search === ""), page.click("[data-testid=clear-filters]")]);
    equal((await cardSlugs(page)).length, 12, "every agent again");
  });

  await step("store: sort by rating", async () => {
    await page.selectOption("#store-sort", "top_rated");
    await Promise.all([page.waitForURL(/sort=top_rated/), page.click("#store-filters .actions button")]);
    const ratings = await cardRatings(page);
    const topRated = await cardSlugs(page);
    check(ratings[0] > 0, `the first card is rated: ${ratings}`);
    for (let i = 1; i < ratings.length; i++) {
      check(ratings[i] <= ratings[i - 1], `top rated first: ${ratings}`);
    }
    await page.selectOption("#store-sort", "newest");
    await Promise.all([page.waitForURL(/sort=newest/), page.click("#store-filters .actions button")]);
    const newest = await cardSlugs(page);
    equal(newest.length, 12, "cards sorted by newest");
    check(newest.join() !== topRated.join(), `another order than top rated: ${newest}`);
  });

  await step("store: search", async () => {
    await page.fill("#store-q", "echo");
    await Promise.all([page.waitForURL(/q=echo/), page.press("#store-q", "Enter")]);
    const slugs = await cardSlugs(page);
    check(slugs.includes("echo"), `the search finds Echo: ${slugs}`);
  });
}

async function agentTabs(page) {
  await step("agent: six tabs", async () => {
    await Promise.all([page.waitForURL(/\/agents\/echo/), page.click("[data-slug=echo] [data-testid=agent-link]")]);
    equal(await text(page, "[data-testid=agent-name]"), "Echo", "the agent page");
    equal(await page.locator("[role=tab]").count(), 6, "tabs");
    const expected = {
      description: "Sends back exactly what you give it",
      integration: "Base fee",
      "use-cases": "Check a new key",
      privacy: "Trust score",
      reviews: "Exactly what I needed",
      support: "support@demo.tollgate.dev",
    };
    for (const [tab, words] of Object.entries(expected)) {
      await page.click(`[data-testid=tab-${tab}]`);
      const panel = page.locator(`[data-panel=${tab}]`);
      check(await panel.isVisible(), `the ${tab} panel shows`);
      equal(await page.locator("[data-panel]:visible").count(), 1, `only the ${tab} panel shows`);
      check((await panel.textContent()).includes(words), `the ${tab} panel says "${words}"`);
    }
    await page.click("[data-testid=tab-integration]");
    const prices = await page.locator("[data-panel=integration] [data-testid=functions]").first().textContent();
    check(prices.includes("echo") && prices.includes("0.001"), `Echo's price on the Integration tab: ${prices}`);
    check((await text(page, "[data-testid=snippet-curl]")).includes("/echo/"), "the curl snippet calls Echo");
  });
}

/** Installs Echo, makes a key; returns the installation's usage path and the key. */
async function installAndKey(page) {
  return step("install and create a key", async () => {
    await Promise.all([page.waitForURL(/\/usage\/[^/?]+\?tab=settings/), page.click("[data-testid=install]")]);
    const usage = new URL(page.url()).pathname;
    await page.fill("[data-testid=key-name]", "browser test");
    await Promise.all([page.waitForURL(/shown=/), page.click("[data-testid=create-key]")]);
    const key = await text(page, "[data-testid=new-key-value]");
    check(/^tgk_echo_\w+$/.test(key), `a new Echo key is shown: ${key}`);
    return { usage, key };
  });
}

/** The calls the Rust test made, seen on every page that shows usage. */
async function seeTheCalls(page, usage, calls) {
  const made = calls.request_ids.length;
  await step("dashboard shows the calls", async () => {
    await page.goto("/dashboard");
    await eventually(
      page,
      async () => number(await text(page, "[data-testid=stat-calls] .v")) === made,
      `${made} calls in the last 24 h on the dashboard`,
    );
    check((await page.locator("[data-testid=stat-calls] polyline.spark").count()) === 1, "the sparkline");
    check((await page.locator("[data-testid=spend-chart] svg").count()) === 1, "the spend chart");
    const row = page.locator("[data-testid=my-agents] tbody tr", { hasText: "Echo" });
    equal(number(await row.locator("td.num").first().textContent()), made, "Echo's calls in My agents");
  });

  await step("usage details: stats and chart", async () => {
    await page.goto(`${usage}?tab=details`);
    equal(number(await text(page, "[data-testid=stat-calls] .v")), made, "calls on the usage page");
    const tips = await page.locator("[data-testid=calls-chart] svg [data-tip]").evaluateAll((els) =>
      els.map((e) => e.getAttribute("data-tip")),
    );
    const perBar = tips.map((t) => number(t.slice(t.lastIndexOf(": ") + 2)));
    equal(perBar.reduce((a, b) => a + b, 0), made, `the calls chart's bars add up to the calls (${tips})`);
    check((await page.locator("[data-testid=latency] tr").count()) >= 3, "latency percentiles");
  });

  await step("audit log: rows and a row's details", async () => {
    await Promise.all([page.waitForURL(/tab=audit/), page.click("[data-testid=tab-audit]")]);
    equal(await page.locator("[data-testid=audit-row]").count(), made, "audit rows");
    const id = calls.request_ids[calls.request_ids.length - 1];
    await Promise.all([
      page.waitForURL(new RegExp(`call=${id}|${id}`)),
      page.click(`[data-testid=audit-row-link]:text("${id}")`),
    ]);
    const detail = await text(page, "[data-testid=call-detail]");
    check(detail.includes(id) && detail.includes("echo"), `the call's details: ${detail}`);
  });

  await step("audit log: CSV export", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=export-csv]")]);
    const csv = fs.readFileSync(await download.path(), "utf8");
    const lines = csv.trim().split(/\r?\n/);
    check(/request/i.test(lines[0]), `a header line: ${lines[0]}`);
    equal(lines.length, made + 1, "a line per call and the header");
    for (const id of calls.request_ids) check(csv.includes(id), `the CSV has ${id}`);
  });
}

async function revoke(page, usage, key) {
  await step("revoke the key", async () => {
    await page.goto(`${usage}?tab=settings`);
    const row = page.locator("[data-testid=key-row]", { hasText: "browser test" });
    await Promise.all([page.waitForURL(/notice=/), row.locator("[data-testid=revoke]").click()]);
    check((await row.textContent()).includes("revoked"), "the key shows as revoked");
  });
  await step("a call with the revoked key is refused", async () => {
    const refused = await ask({ call: { key, agent: "echo", expect: 403 } });
    equal(refused.status, 403, "the gateway's answer to the revoked key");
  });
}

async function theme(page) {
  await step("theme toggle", async () => {
    await page.goto("/settings");
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const light = await background();
    await page.check("[data-testid=theme-dark]");
    await Promise.all([page.waitForURL(/notice=/), page.click("[data-testid=theme-submit]")]);
    equal(await page.getAttribute("html", "data-theme"), "dark", "the page's theme");
    const dark = await background();
    check(dark !== light, `the background changes (${light} → ${dark})`);
    await page.check("[data-testid=theme-light]");
    await Promise.all([page.waitForURL(/notice=/), page.click("[data-testid=theme-submit]")]);
    equal(await page.getAttribute("html", "data-theme"), "light", "back to light");
  });
}

module.exports = async function consumer(browser) {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  const email = `${unique("ada-")}@example.com`;
  await step("sign up", async () => {
    await page.goto("/signup");
    await page.fill("#signup-name", "Ada Browser");
    await page.fill("#signup-email", email);
    await page.fill("#signup-password", "correct horse 42");
    await Promise.all([page.waitForURL(/\/dashboard/), page.click("#signup-submit")]);
    check((await text(page, "[data-testid=signed-in-as]")).includes("Ada Browser"), "signed in after signing up");
  });
  await store(page);
  await agentTabs(page);
  const { usage, key } = await installAndKey(page);
  const calls = await step("call Echo through the gateway", async () => {
    const answer = await ask({ call: { key, agent: "echo", text: "hello from the browser test", expect: 200 } });
    equal(answer.request_ids.length, 2, "initialize and tools/call were answered");
    return answer;
  });
  await seeTheCalls(page, usage, calls);
  await revoke(page, usage, key);
  await theme(page);
  await ctx.close();
};
