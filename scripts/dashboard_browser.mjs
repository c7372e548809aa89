// The dashboard in a real headless Chromium, driven by playwright-core (see
// scripts/check-dashboard.sh, which prepares the server and the data).
//
//   node dashboard_browser.mjs URL KEY MIN_REQUESTS VERSION SCREENSHOT
//
// Loads the page without a key, checks that it asks for one (the API answers 401),
// types the key, waits until the panels show the server's figures (the request count
// at least MIN_REQUESTS, the serving VERSION), checks the key sits in sessionStorage,
// that no panel shows an error, and that the browser logged no console error and no
// uncaught exception; saves a screenshot. Exits non-zero with the reason otherwise.
import { createRequire } from "node:module";

const require = createRequire(process.env.FLYWHEEL_NODE_MODULES + "/");
const { chromium } = require("playwright-core");

const [url, key, minRequests, version, screenshot] = process.argv.slice(2);
const problems = [];
const consoleErrors = [];

// Live traffic while the page is open: recommendation requests for the simulated
// users, and a click on the first item of every third list (with its request id, so
// the running experiment gets outcomes). A seeded sequence, not Math.random.
let trafficOn = true;
let trafficSent = 0;
async function traffic() {
  const headers = { Authorization: `Bearer ${key}` };
  let state = 12345;
  while (trafficOn) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const user = "u" + String(state % 200).padStart(5, "0");
    const answer = await fetch(`${url}v1/recommendations?user_id=${user}&count=10`, { headers });
    const list = await answer.json();
    trafficSent++;
    if (trafficSent % 3 === 0 && list.items && list.items.length) {
      const click = { user_id: user, item_id: list.items[0].item_id, action: "click", request_id: list.request_id };
      await fetch(`${url}v1/events`, {
        method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(click),
      });
    }
    await new Promise(resolve => setTimeout(resolve, 100));
  }
}

// Chromium writes every fetch that is not 2xx into the console as a "Failed to load
// resource" entry: the network's record, not an error of the page. The page meets
// exactly two such answers by design, and only those are let through: one 401 from
// /v1/overview before the key is typed (that is how it learns it needs one), and a
// 404 from an optional endpoint this build may lack (/v1/monitoring,
// /v1/controller), asked once, not at every poll. Everything else fails the run.
let keyTyped = false;
const seen404 = new Map();
function expectedNetworkEntry(message) {
  const text = message.text();
  const where = message.location().url || "";
  if (!text.startsWith("Failed to load resource")) return false;
  if (text.includes("status of 401") && where.endsWith("/v1/overview")) return !keyTyped;
  const optional = /\/v1\/(monitoring|controller)$/.test(where);
  if (text.includes("status of 404") && optional) {
    seen404.set(where, (seen404.get(where) || 0) + 1);
    return seen404.get(where) === 1;
  }
  return false;
}

const browser = await chromium.launch({
  executablePath: process.env.FLYWHEEL_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
// The drift and controller panels against answers of the documented shapes (with a
// field the page does not know, and fields left out), served by the browser itself:
// whichever build runs, these renderers are exercised.
const cannedMonitoring = {
  window: { from: "2026-12-01T00:00:00Z", to: "2026-12-01T01:00:00Z", events: 1234 },
  reference_version: "v1",
  features: [
    { name: "price", kind: "numeric", statistic: "ks", value: 0.31, threshold: 0.1, drifted: true, extra: 1 },
    { name: "category", kind: "categorical", statistic: "psi", value: 0.02, threshold: 0.15, drifted: false },
    { name: "device" },
  ],
  prediction: { mean_predicted_ctr: 0.05, observed_ctr: 0.04, observed_over_expected: 0.8, band: [0.85, 1.15] },
  data_quality: { unknown_item_ids: 3, missing_fields: 0, duplicates: 2, nested: { ignored: true } },
  something_new: [1, 2, 3],
};
const cannedController = {
  mode: "dry_run",
  decisions: [
    { at: "2026-12-01T01:00:00Z", rule: "psi_drift", evidence: { feature: "price", psi: 0.31 }, action: "retrain", outcome: "dry_run" },
    { rule: "data_quality" },
  ],
};
async function checkPanelsWithCannedAnswers() {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on("pageerror", error => consoleErrors.push(`uncaught (canned answers): ${error.message}`));
  page.on("console", m => { if (m.type() === "error") consoleErrors.push(`canned answers: ${m.text()}`); });
  const answer = body => route => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(body) });
  await page.route("**/v1/monitoring", answer(cannedMonitoring));
  await page.route("**/v1/controller", answer(cannedController));
  await page.addInitScript(k => sessionStorage.setItem("flywheel.apiKey", k), key);
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => document.querySelector("#p-controller .body table") !== null, null, { timeout: 20000 });
  const drift = await page.textContent("#p-drift .body");
  const controller = await page.textContent("#p-controller .body");
  for (const expected of ["price", "drifted", "category", "device", "0.310", "unknown item ids", "0.800"]) {
    if (!drift.includes(expected)) problems.push(`drift panel lacks "${expected}": ${drift.slice(0, 200)}`);
  }
  for (const expected of ["dry_run", "psi_drift", "retrain", "feature=price", "data_quality"]) {
    if (!controller.includes(expected)) problems.push(`controller panel lacks "${expected}": ${controller.slice(0, 200)}`);
  }
  const tags = await page.textContent("#t-drift");
  if (tags !== "1 of 3 drifted") problems.push(`drift tag says "${tags}"`);
  if (await page.$(".msg.error")) problems.push("a panel shows an error with the canned answers");
  await page.close();
}

const running = traffic().catch(error => problems.push(`traffic: ${error.message}`));
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on("console", message => {
    if (message.type() !== "error") return;
    if (expectedNetworkEntry(message)) return;
    consoleErrors.push(`${message.text()} (${message.location().url || "?"})`);
  });
  page.on("pageerror", error => consoleErrors.push(`uncaught: ${error.message}`));

  const response = await page.goto(url, { waitUntil: "load" });
  if (!response || response.status() !== 200) throw new Error(`GET / answered ${response && response.status()}`);

  // No key yet: the page must ask for one.
  await page.waitForSelector("#keyform.shown", { timeout: 20000 });
  await page.fill("#key", key);
  keyTyped = true;
  await page.click("#keysubmit");

  // Panels with data: the request count and the serving version.
  const deadline = Date.now() + 60000;
  let figures = null;
  for (;;) {
    figures = await page.evaluate(() => {
      const kpi = (panel, label) => {
        for (const node of document.querySelectorAll(`#p-${panel} .kpi`)) {
          if (node.querySelector(".l").textContent === label) return node.querySelector(".v").textContent;
        }
        return null;
      };
      return {
        requests: kpi("serving", "recommendations"),
        serving: kpi("models", "serving"),
        events: kpi("ingestion", "events accepted"),
        refreshed: Number(document.body.dataset.refreshed || 0),
        status: document.getElementById("status").textContent,
      };
    });
    const requests = Number(String(figures.requests || "").replace(/,/g, ""));
    if (requests >= Number(minRequests) && figures.serving === version) break;
    if (Date.now() > deadline) {
      throw new Error(`the panels did not show the data within 60 s: ${JSON.stringify(figures)}`);
    }
    await page.waitForTimeout(250);
  }
  // Three more refreshes: the live update and the sparklines. The count must grow
  // with the traffic still running.
  const shownCount = () => page.evaluate(() =>
    Number(document.querySelector("#p-serving .kpi .v").textContent.replace(/,/g, "")));
  const firstCount = await shownCount();
  for (let i = 0; i < 3; i++) {
    const before = await page.evaluate(() => Number(document.body.dataset.refreshed || 0));
    await page.waitForFunction(b => Number(document.body.dataset.refreshed || 0) > b, before, { timeout: 20000 });
  }
  const lastCount = await shownCount();
  if (!(lastCount > firstCount)) problems.push(`the request count did not refresh (${firstCount} then ${lastCount})`);
  const experiment = await page.textContent("#p-experiments .body");
  if (!experiment.includes("dashboard-ab")) problems.push(`the experiments panel does not show dashboard-ab: "${experiment.slice(0, 80)}"`);

  const stored = await page.evaluate(() => sessionStorage.getItem("flywheel.apiKey"));
  if (stored !== key) problems.push("the key is not kept in sessionStorage");
  const status = await page.textContent("#status");
  if (!/^last refresh \d/.test(status)) problems.push(`the status line says "${status}"`);
  const panelErrors = await page.$$eval(".msg.error", nodes => nodes.map(n => n.closest("section").id + ": " + n.textContent));
  for (const error of panelErrors) problems.push(`panel error: ${error}`);
  const lines = await page.$$eval("#p-serving svg polyline", nodes => nodes.length);
  if (lines < 1) problems.push("no sparkline was drawn");
  for (const panel of ["drift", "controller"]) {
    const text = await page.textContent(`#p-${panel} .body`);
    if (!text.trim()) problems.push(`the ${panel} panel is empty`);
  }

  await page.screenshot({ path: screenshot, fullPage: true });
  await checkPanelsWithCannedAnswers();
  const final = await page.evaluate(() => ({
    requests: document.querySelector("#p-serving .kpi .v").textContent,
    drift: document.querySelector("#p-drift .body").textContent.slice(0, 60),
    controller: document.querySelector("#p-controller .body").textContent.slice(0, 60),
  }));
  console.log(`dashboard: ${final.requests} recommendations shown, serving ${figures.serving}, ` +
    `events accepted ${figures.events}; drift panel: "${final.drift}"; controller panel: "${final.controller}"`);
} catch (error) {
  problems.push(error.message);
} finally {
  trafficOn = false;
  await running;
  await browser.close();
}
for (const error of consoleErrors) problems.push(`console: ${error}`);
if (problems.length) {
  for (const problem of problems) console.error(`FAIL dashboard: ${problem}`);
  process.exit(1);
}
console.log(`dashboard: no console errors, no uncaught exceptions (${trafficSent} live requests during the run)`);
