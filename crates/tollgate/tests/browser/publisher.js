// The publisher's journey: sign up, create an agent and publish a priced version in the
// publisher console, then find it in the store with its price on the Integration tab.
"use strict";

const { BASE, check, context, equal, step, text, unique } = require("./lib");

module.exports = async function publisher(browser) {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  const slug = unique("counter-");
  await step("publisher: sign up", async () => {
    await page.goto("/signup");
    await page.fill("#signup-name", "Grace Publisher");
    await page.fill("#signup-email", `${unique("grace-")}@example.com`);
    await page.fill("#signup-password", "correct horse 42");
    await Promise.all([page.waitForURL(/\/dashboard/), page.click("#signup-submit")]);
  });
  await step("publisher: create an agent", async () => {
    await page.click("[data-testid=nav-publisher]");
    await Promise.all([page.waitForURL(/\/publisher\/new/), page.click("[data-testid=new-agent]")]);
    await page.fill("[data-testid=agent-slug]", slug);
    await page.fill("[data-testid=agent-name-input]", "Browser Counter");
    await page.fill("[data-testid=agent-description]", "Counts words; published by the browser test.");
    await page.fill("[data-testid=agent-category]", "productivity");
    await page.selectOption("#agent-protocol", "mcp");
    await page.fill("[data-testid=agent-support-email]", "help@example.com");
    await Promise.all([page.waitForURL(/versions\/new/), page.click("[data-testid=create-agent]")]);
  });
  await step("publisher: publish a priced version", async () => {
    await page.fill("[data-testid=version-number]", "1.0.0");
    await page.fill("[data-testid=version-upstream]", `${BASE}/_examples/word-count/mcp`);
    await page.fill("[data-testid=version-base-fee]", "0.0001");
    const row = page.locator("[data-testid=fn-row]").first();
    await row.locator("[data-testid=fn-name]").fill("count_words");
    await row.locator("[data-testid=fn-model]").selectOption("per_request");
    await row.locator("[data-testid=fn-price]").fill("0.0042");
    await row.locator("[data-testid=fn-free]").fill("5");
    await Promise.all([page.waitForURL(/notice=version_published/), page.click("[data-testid=publish-version]")]);
    const version = page.locator("[data-testid=publisher-version][data-version='1.0.0']");
    equal(await text(page, "[data-testid=publisher-version][data-version='1.0.0'] [data-testid=version-status]"), "active", "the version's status");
    check((await version.textContent()).includes("0.0042"), "the console shows the price");
  });
  await step("publisher: the agent in the store", async () => {
    await page.click("[data-testid=nav-store]");
    await page.fill("#store-q", slug);
    await Promise.all([page.waitForURL(new RegExp(`q=${slug}`)), page.press("#store-q", "Enter")]);
    equal(await page.locator("[data-testid=agent-card]").count(), 1, "the store finds the new agent");
    await Promise.all([page.waitForURL(new RegExp(`/agents/${slug}`)), page.click("[data-testid=agent-link]")]);
    await page.click("[data-testid=tab-integration]");
    const functions = await text(page, "[data-panel=integration] [data-testid=functions]");
    check(functions.includes("count_words") && functions.includes("0.0042"), `the price on the Integration tab: ${functions}`);
    check(functions.includes("5"), `the free tier on the Integration tab: ${functions}`);
  });
  await ctx.close();
};
