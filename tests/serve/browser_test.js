// The playground in a real browser: Debian's chromium, headless, driven by playwright-core.
// Loads the page, submits a prompt, waits for the stream to finish, checks the text, hovers a
// token and checks that its alternatives' probabilities (before and after the sampling
// filters) each sum to at most 1, and saves a screenshot.
"use strict";
const assert = require("node:assert/strict");
const { chromium } = require("playwright-core");

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(process.env.FOUNDRY_URL + "/");
    await page.waitForFunction(() => document.getElementById("model").textContent.includes("context"));
    await page.fill("#prompt", "Once upon a time");
    await page.fill("#max_tokens", "40");
    await page.fill("#seed", "7");
    await page.click("#generate");
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("done"),
                               null, { timeout: 60000 });
    const status = await page.textContent("#status");
    const tokens = await page.$$(".tok");
    assert.ok(tokens.length > 5, `tokens shown (${tokens.length}); status: ${status}`);
    const text = await page.textContent("#output");
    assert.ok(text.startsWith("Once upon a time") && text.length > "Once upon a time".length + 5, text);

    await tokens[3].hover();
    await page.waitForSelector("#tip:not([hidden])");
    const sums = await page.$$eval("#tip > div", (cols) =>
      cols.map((col) => [...col.querySelectorAll(".alt")].reduce((s, a) => s + Number(a.dataset.prob), 0)));
    assert.equal(sums.length, 2, "before and after");
    for (const s of sums) assert.ok(s > 0 && s <= 1 + 1e-9, `alternatives sum to ${s}`);
    assert.deepEqual(errors, [], "no script errors");
    await page.screenshot({ path: process.env.SCREENSHOT });
    console.log(`browser test passed: ${tokens.length} tokens, alternatives sum to ${sums.map((s) => s.toFixed(3))}; ` +
                `screenshot ${process.env.SCREENSHOT}`);
  } finally {
    await browser.close();
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
