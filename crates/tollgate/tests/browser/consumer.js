// The consumer's journey: sign up, find an agent in the store (search, every filter,
// every sort, every page), read its six tabs (also with the arrow keys), copy a snippet,
// write, edit and delete a review, install it, create a key and set its daily limits,
// have the Rust test call the agent through the gateway with that key, find the calls on
// the dashboard (its chart from the keyboard), the usage chart and the audit log (with a
// row's details), export the audit as CSV, revoke the key and see the next call refused;
// switch the theme; log out, be sent back to the page after logging in again, and
// uninstall the agent.
"use strict";

const fs = require("node:fs");
const {
  ask,
  check,
  checkSecurityHeaders,
  context,
  equal,
  eventually,
  number,
  step,
  text,
  unique,
} = require("./lib");

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

/** Every card of every page the store shows from the current one on, following "Next". */
async function allPages(page) {
  const slugs = await cardSlugs(page);
  let pages = 1;
  while ((await page.locator("[data-testid=page-next]").count()) > 0) {
    const before = page.url();
    await Promise.all([page.waitForURL((u) => u.href !== before), page.click("[data-testid=page-next]")]);
    const more = await cardSlugs(page);
    check(more.length > 0 && more.length <= 12, `a page of 1 to 12 cards: ${more.length}`);
    slugs.push(...more);
    pages += 1;
    check(pages < 100, "the pager ends");
  }
  return { slugs, pages };
}

/** The slugs the API lists for the store query `search` (every page), in order. */
async function apiSlugs(page, search) {
  const slugs = [];
  for (let p = 1; ; p++) {
    const params = new URLSearchParams(search);
    for (const [k, v] of [...params.entries()]) if (!v) params.delete(k);
    params.set("page", String(p));
    const response = await page.request.get(`/api/v1/store/agents?${params}`);
    equal(response.status(), 200, `the API's store listing for ${search}`);
    const body = await response.json();
    slugs.push(...body.agents.map((a) => a.slug));
    if (p * body.per_page >= body.total) return slugs;
  }
}

/** Applies the store's filter form (after `fill`), and checks the cards against the API. */
async function applyFilters(page, fill, expect) {
  await page.goto("/store");
  await fill();
  await Promise.all([page.waitForURL((u) => u.search.length > 1), page.click("#store-filters .actions button")]);
  const search = new URL(page.url()).search;
  const { slugs } = await allPages(page);
  const listed = await apiSlugs(page, search);
  equal(slugs.join(), listed.join(), `the cards are what the API lists for ${search}`);
  if (expect) await expect(slugs, search);
  return slugs;
}

async function store(page) {
  let total = 0;
  let everyAgent = [];
  await step("store: pages of 12", async () => {
    const response = await page.goto("/store");
    checkSecurityHeaders(response, "the store");
    const first = await cardSlugs(page);
    total = number(await text(page, "[data-testid=store-total]"));
    equal(first.length, Math.min(12, total), "cards on the first page");
    check(total > 12, `more than one page of agents (${total})`);
    const { slugs, pages } = await allPages(page);
    everyAgent = slugs;
    equal(slugs.length, total, "every agent is on one of the pages");
    equal(new Set(slugs).size, total, "no agent is on two pages");
    equal(pages, Math.ceil(total / 12), "pages of 12");
    const last = page.url();
    await Promise.all([page.waitForURL((u) => u.href !== last), page.click("[data-testid=page-prev]")]);
    equal((await cardSlugs(page)).length, 12, "the page before the last is full");
    await page.goto("/store");
    equal((await cardSlugs(page)).join(), first.join(), "back on the first page");
  });

  await step("store: the category filter", async () => {
    await applyFilters(page, () => page.fill("#store-category", "productivity"), async (slugs) => {
      check(slugs.length >= 1 && slugs.length < total, `productivity agents only: ${slugs}`);
      for (const badge of await page.locator("[data-testid=card-category]").allTextContents()) {
        equal(badge.trim(), "productivity", "each card's category badge");
      }
    });
    await Promise.all([page.waitForURL((u) => u.search === ""), page.click("[data-testid=clear-filters]")]);
    equal((await cardSlugs(page)).length, 12, "every agent again");
  });

  await step("store: the platform filter", async () => {
    const platform = await page.locator("#store-platforms option").first().getAttribute("value");
    await applyFilters(page, () => page.fill("#store-platform", platform), async (slugs) => {
      check(slugs.length >= 1 && slugs.length < total, `agents for ${platform}: ${slugs}`);
    });
  });

  await step("store: the capability filter", async () => {
    await applyFilters(page, () => page.fill("#store-capability", "summarization"), async (slugs) => {
      check(slugs.length >= 1 && slugs.length < total, `summarizing agents: ${slugs}`);
      check(slugs.includes("summarizer"), `Summarizer summarizes: ${slugs}`);
    });
  });

  await step("store: the protocol filter", async () => {
    const a2a = await applyFilters(page, () => page.selectOption("#store-protocol", "a2a"), async (slugs) => {
      check(slugs.length >= 1 && slugs.length < total, `A2A agents: ${slugs}`);
      for (const badge of await page.locator("[data-testid=card-protocol]").allTextContents()) {
        equal(badge.trim(), "A2A", "each card's protocol");
      }
    });
    const mcp = await applyFilters(page, () => page.selectOption("#store-protocol", "mcp"));
    equal(a2a.length + mcp.length, total, "every agent is MCP or A2A");
  });

  await step("store: the minimum trust filter", async () => {
    await applyFilters(page, () => page.fill("#store-min_trust", "80"), async (slugs) => {
      check(slugs.length >= 1 && slugs.length < total, `trusted agents: ${slugs}`);
      for (const badge of await page.locator("[data-testid=card-trust]").allTextContents()) {
        check(number(badge) >= 80, `a card under the minimum trust: ${badge}`);
      }
    });
    await page.goto("/store?min_trust=101");
    check((await page.locator("[data-testid=error-min_trust]").count()) === 1, "an out-of-range trust score is explained");
  });

  await step("store: every sort", async () => {
    const topRated = await applyFilters(page, () => page.selectOption("#store-sort", "top_rated"));
    await page.goto("/store?sort=top_rated");
    const ratings = await cardRatings(page);
    check(ratings[0] > 0, `the first card is rated: ${ratings}`);
    for (let i = 1; i < ratings.length; i++) {
      check(ratings[i] <= ratings[i - 1], `top rated first: ${ratings}`);
    }
    const newest = await applyFilters(page, () => page.selectOption("#store-sort", "newest"));
    check(newest.join() !== topRated.join(), `another order than top rated: ${newest}`);
    const popular = await applyFilters(page, () => page.selectOption("#store-sort", "popular"));
    equal(popular.length, total, "every agent, most installed first");
    await page.goto("/store?sort=popular");
    const installs = (await page.locator("[data-testid=agent-card] .stats > span:nth-child(2)").allTextContents()).map(number);
    for (let i = 1; i < installs.length; i++) {
      check(installs[i] <= installs[i - 1], `most installed first: ${installs}`);
    }
    equal(new Set(everyAgent).size, new Set([...topRated, ...newest, ...popular]).size, "the sorts list the same agents");
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

  await step("agent: tabs with the arrow keys", async () => {
    await page.focus("[data-testid=tab-integration]");
    equal(await page.getAttribute("[data-testid=tab-description]", "tabindex"), "-1", "one tab stop: the selected tab");
    await page.keyboard.press("ArrowRight");
    equal(await page.evaluate(() => document.activeElement.dataset.tab), "use-cases", "ArrowRight moves to the next tab");
    check(await page.locator("[data-panel=use-cases]").isVisible(), "and shows its panel");
    await page.keyboard.press("End");
    equal(await page.evaluate(() => document.activeElement.dataset.tab), "support", "End: the last tab");
    await page.keyboard.press("ArrowRight");
    equal(await page.evaluate(() => document.activeElement.dataset.tab), "description", "wrapping round to the first");
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("Home");
    equal(await page.getAttribute("[data-testid=tab-description]", "aria-selected"), "true", "Home: the first tab");
    equal(await page.locator("[data-panel]:visible").count(), 1, "one panel shows");
  });

  await step("agent: copy a snippet", async () => {
    await page.click("[data-testid=tab-integration]");
    const button = page.locator("[data-copy=snippet-curl]");
    check(await button.isVisible(), "the copy button shows (script on)");
    await button.click();
    await page.waitForSelector("[data-copy=snippet-curl][data-copied]");
    equal((await button.textContent()).trim(), "Copied", "the button confirms the copy");
    const copied = await page.evaluate(() => navigator.clipboard.readText().catch(() => null));
    if (copied !== null) {
      equal(copied.trim(), (await text(page, "[data-testid=snippet-curl]")).trim(), "the clipboard holds the snippet");
    }
    await page.waitForFunction(() => !document.querySelector("[data-copy=snippet-curl][data-copied]"));
    equal((await button.textContent()).trim(), "Copy", "the label comes back");
  });

  await step("agent: write, edit and delete a review", async () => {
    await page.goto("/agents/echo?tab=reviews");
    const mine = "Answered every call the same moment; reviewed by the browser test.";
    await page.check("[data-testid=review-rating-4]");
    await page.fill("[data-testid=review-body]", mine);
    await Promise.all([page.waitForURL(/notice=review_saved/), page.click("[data-testid=review-submit]")]);
    const review = page.locator("[data-testid=reviews] li", { hasText: "Ada Browser" });
    check((await review.textContent()).includes(mine), "the review is listed");
    check((await review.textContent()).includes("4 out of 5"), "with its stars");
    equal((await text(page, "[data-testid=review-submit]")), "Save changes", "the form now edits it");
    await page.check("[data-testid=review-rating-5]");
    await page.fill("[data-testid=review-body]", `${mine} Edited.`);
    await Promise.all([page.waitForURL(/notice=review_saved/), page.click("[data-testid=review-submit]")]);
    const edited = await page.locator("[data-testid=reviews] li", { hasText: "Ada Browser" }).textContent();
    check(edited.includes("Edited.") && edited.includes("5 out of 5") && edited.includes("edited"), `edited: ${edited}`);
    await Promise.all([page.waitForURL(/notice=review_deleted/), page.click("[data-testid=review-delete]")]);
    equal(await page.locator("[data-testid=reviews] li", { hasText: "Ada Browser" }).count(), 0, "the review is gone");
    equal((await text(page, "[data-testid=review-submit]")), "Post review", "and can be written again");
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
    await page.click("[data-testid=copy-new-key]");
    await page.waitForSelector("[data-testid=copy-new-key][data-copied]");
    return { usage, key };
  });
}

async function dailyLimits(page, usage) {
  await step("set a key's daily limits", async () => {
    await page.goto(`${usage}?tab=settings`);
    const row = page.locator("[data-testid=key-row]", { hasText: "browser test" });
    await row.locator("[data-testid=edit-limits]").click();
    const form = row.locator("[data-testid=limits-form]");
    await form.locator("input[name=requests]").fill("500");
    await form.locator("input[name=output_tokens]").fill("20000");
    await Promise.all([page.waitForURL(/notice=limits_saved/), form.locator("[data-testid=limits-submit]").click()]);
    const limits = await page.locator("tr", { hasText: "browser test" }).last().textContent();
    check(limits.includes("500") && limits.includes("20,000"), `the limits are listed: ${limits}`);
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
    check((await page.locator("[data-testid=spend-chart] svg.chart").count()) === 1, "the spend chart");
  });

  await step("the spend chart from the keyboard", async () => {
    const stops = await page.evaluate(() => {
      const box = document.querySelector("[data-testid=spend-chart]");
      return Array.from(box.querySelectorAll("*")).filter((el) => el.tabIndex >= 0 && el.tagName !== "SUMMARY").length;
    });
    equal(stops, 1, "the chart is one tab stop, not one per point");
    await page.focus("[data-testid=spend-chart] svg.chart");
    await page.keyboard.press("End");
    const tip = page.locator("[data-testid=chart-tooltip]");
    check(await tip.isVisible(), "End shows the last point's value");
    const last = await tip.textContent();
    await page.keyboard.press("ArrowLeft");
    check((await tip.textContent()) !== last, `ArrowLeft shows the point before: ${last}`);
    await page.keyboard.press("Tab");
    check(await tip.isHidden(), "leaving the chart hides the value");
  });

  await step("dashboard: My agents", async () => {
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

async function logOutAndBackIn(page, email, usage) {
  await step("log out, and log back in to the page asked for", async () => {
    await Promise.all([page.waitForURL(/\/login\?notice=logged_out/), page.click("[data-testid=logout]")]);
    check((await text(page, "[data-testid=notice]")).includes("logged out"), "the log-in page says so");
    equal(await page.locator("[data-testid=signed-in-as]").count(), 0, "signed out");
    await page.goto(`${usage}?tab=audit`);
    check(page.url().includes(`/login?next=${encodeURIComponent(`${usage}?tab=audit`)}`), `asked to log in: ${page.url()}`);
    await page.fill("#login-email", email);
    await page.fill("#login-password", "correct horse 42");
    await Promise.all([page.waitForURL(new RegExp(`${usage}\\?tab=audit`)), page.click("#login-submit")]);
    check((await text(page, "[data-testid=signed-in-as]")).includes("Ada Browser"), "signed in again, on the audit tab");
  });
}

async function uninstall(page, usage) {
  await step("uninstall", async () => {
    await page.goto(`${usage}?tab=settings`);
    await page.click("[data-testid=uninstall-open]");
    await page.check("[data-testid=uninstall-confirm]");
    await Promise.all([page.waitForURL(/notice=uninstalled/), page.click("[data-testid=uninstall-submit]")]);
    check((await text(page, "[data-testid=notice]")).includes("Uninstalled"), "the page says so");
    await page.goto("/agents/echo");
    check((await page.locator("[data-testid=install]").count()) === 1, "Echo can be installed again");
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
  await dailyLimits(page, usage);
  const calls = await step("call Echo through the gateway", async () => {
    const answer = await ask({ call: { key, agent: "echo", text: "hello from the browser test", expect: 200 } });
    equal(answer.request_ids.length, 2, "initialize and tools/call were answered");
    return answer;
  });
  await seeTheCalls(page, usage, calls);
  await revoke(page, usage, key);
  await theme(page);
  await logOutAndBackIn(page, email, usage);
  await uninstall(page, usage);
  await ctx.close();
};
