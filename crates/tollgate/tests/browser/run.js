// Runs the browser journeys against the Tollgate instance at TOLLGATE_URL (started with
// --demo by crates/tollgate/tests/browser.rs, which answers the gateway calls asked for
// on standard output). Exits non-zero at the first failed check.
"use strict";

const { launch, report, timings } = require("./lib");

(async () => {
  const started = Date.now();
  const browser = await launch();
  try {
    await require("./consumer")(browser);
    await require("./publisher")(browser);
    await require("./layout")(browser);
  } finally {
    await browser.close();
  }
  report({ done: { ms: Date.now() - started, steps: timings } });
  process.exit(0);
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
