// What the journeys share: the browser, the line protocol with the Rust test that runs
// them (crates/tollgate/tests/browser.rs), screenshots, and checks.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");
const { chromium } = require("playwright-core");

/** The instance under test, e.g. `http://127.0.0.1:41234`. */
const BASE = process.env.TOLLGATE_URL;
/** Where screenshots go (`target/screenshots/<database>`). */
const SHOTS = process.env.TOLLGATE_SCREENSHOTS;
/** The demo accounts' password. */
const DEMO_PASSWORD = process.env.TOLLGATE_DEMO_PASSWORD;

/** The viewports every main page is checked and photographed at. */
const VIEWPORTS = { phone: { width: 360, height: 740 }, desktop: { width: 1280, height: 900 } };

/** Headless Chromium as this machine runs it: Debian's build, no network of its own. */
async function launch() {
  return chromium.launch({
    executablePath: process.env.TOLLGATE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A new browser context (its own cookies) at `viewport`, accepting every confirm(). */
async function context(browser, viewport = VIEWPORTS.desktop) {
  const ctx = await browser.newContext({ viewport, baseURL: BASE, acceptDownloads: true });
  ctx.setDefaultTimeout(15000);
  // Copy buttons write to the clipboard; the journeys read it back.
  await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  ctx.on("page", (page) => page.on("dialog", (dialog) => dialog.accept()));
  return ctx;
}

// The line protocol: a line `@@ {json}` on standard output asks the Rust test for
// something (a gateway call) or reports; the answer is one JSON line on standard input.
const answers = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function ask(message) {
  process.stdout.write(`@@ ${JSON.stringify(message)}\n`);
  const { value, done } = await answers.next();
  if (done) throw new Error(`no answer to ${JSON.stringify(message)}`);
  return JSON.parse(value);
}

function report(message) {
  process.stdout.write(`@@ ${JSON.stringify(message)}\n`);
}

const timings = [];

/** Runs one named step, timing it; a failure names the step. */
async function step(name, fn) {
  const started = Date.now();
  try {
    return await fn();
  } catch (e) {
    e.message = `${name}: ${e.message}`;
    throw e;
  } finally {
    timings.push([name, Date.now() - started]);
    console.log(`step ${name}: ${Date.now() - started} ms`);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function equal(actual, expected, message) {
  if (actual !== expected) {
    throw new Error(`${message}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Polls `fn` until it returns a truthy value (reloading `page` between tries). */
async function eventually(page, fn, what, ms = 10000) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > until) throw new Error(`${what}: still not so after ${ms} ms`);
    await page.waitForTimeout(200);
    await page.reload();
  }
}

/** The trimmed text of the first element matching `selector`. */
async function text(page, selector) {
  return ((await page.locator(selector).first().textContent()) || "").trim();
}

/** Checks that a response carries the headers every page and API answer must have. */
function checkSecurityHeaders(response, what) {
  const h = response.headers();
  equal(h["x-frame-options"], "DENY", `${what}: X-Frame-Options`);
  equal(h["x-content-type-options"], "nosniff", `${what}: X-Content-Type-Options`);
  check(Boolean(h["referrer-policy"]), `${what}: a Referrer-Policy`);
  const csp = h["content-security-policy"] || "";
  check(csp.includes("frame-ancestors 'none'") && csp.includes("script-src 'self'"), `${what}: the CSP: ${csp}`);
}

/** A number shown as text ("1,234", "12 ms", "$0.0042"). */
function number(shown) {
  const m = String(shown).replace(/,/g, "").match(/-?\d+(\.\d+)?/);
  return m ? Number(m[0]) : NaN;
}

/** Fails if the page scrolls sideways; names the elements that stick out. */
async function noHorizontalOverflow(page, label) {
  const found = await page.evaluate(() => {
    const scroller = document.scrollingElement;
    const width = window.innerWidth;
    if (scroller.scrollWidth <= width) return null;
    // The elements that stick out and are not inside a box that scrolls or clips them
    // (an absolutely positioned element is clipped only by its containing blocks).
    const clipped = (el) => {
      let absolute = ["absolute", "fixed"].includes(getComputedStyle(el).position);
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const style = getComputedStyle(p);
        const positioned = style.position !== "static";
        if ((!absolute || positioned) && style.overflowX !== "visible") return true;
        if (positioned) absolute = ["absolute", "fixed"].includes(style.position);
      }
      return false;
    };
    const wide = [];
    for (const el of document.querySelectorAll("body *")) {
      const r = el.getBoundingClientRect();
      if (r.right > width + 1 && r.width > 0 && !clipped(el)) {
        const id = el.id ? `#${el.id}` : "";
        const cls = typeof el.className === "string" && el.className ? `.${el.className.split(" ").join(".")}` : "";
        wide.push(`${el.tagName.toLowerCase()}${id}${cls} (right ${Math.round(r.right)})`);
      }
      if (wide.length >= 8) break;
    }
    return { scrollWidth: scroller.scrollWidth, width, wide };
  });
  if (found) {
    throw new Error(
      `${label}: the page scrolls sideways (scrollWidth ${found.scrollWidth} > innerWidth ${found.width}); ` +
        `wider than the window: ${found.wide.join(", ")}`,
    );
  }
}

/** Saves a full-page screenshot as `{name}.png`. */
async function screenshot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** A name no other run uses. */
function unique(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Logs in through the log-in form. */
async function logIn(page, email, password) {
  await page.goto("/login");
  await page.fill("#login-email", email);
  await page.fill("#login-password", password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/login")), page.click("#login-submit")]);
  check((await page.locator("[data-testid=signed-in-as]").count()) === 1, `${email} is not signed in`);
}

module.exports = {
  BASE,
  DEMO_PASSWORD,
  VIEWPORTS,
  launch,
  context,
  ask,
  report,
  timings,
  step,
  check,
  checkSecurityHeaders,
  equal,
  eventually,
  text,
  number,
  noHorizontalOverflow,
  screenshot,
  unique,
  logIn,
};
