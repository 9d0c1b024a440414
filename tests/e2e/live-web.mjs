// The web page's live dictation in headless Chromium with a fake microphone
// that plays samples/jfk.wav once (--use-file-for-fake-audio-capture, a WAV,
// with %noloop): committed text appears while the audio is still playing,
// the tentative tail is grey, the lag indicator shows, and after Stop the
// text is the jfk transcript; the download is that text.
//
// Starts nothing: VKW_SERVER_URL names a server with tiny.en. VKW_CHROMIUM
// overrides /usr/bin/chromium; VKW_SCREENSHOT=path.png also writes
// path-live.png. Run by scripts/server-e2e.sh.

import { chromium } from "playwright-core";
import { mkdtemp, rm, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const base = process.env.VKW_SERVER_URL;
if (!base) {
  console.error("live-web.mjs: set VKW_SERVER_URL (e.g. http://127.0.0.1:8000)");
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const sample = join(root, "samples", "jfk.wav");
const model = process.env.VKW_MODEL || "tiny.en";
const shot = process.env.VKW_SCREENSHOT;
const JFK = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";
// Word-level edit distance: the live text may differ from jfk by a word or
// two (passes run at moments that depend on the machine's speed).
function edits(a, b) {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 0; i < a.length; i++) {
    const cur = [i + 1];
    for (let j = 0; j < b.length; j++) cur.push(Math.min(prev[j] + (a[i] !== b[j]), prev[j + 1] + 1, cur[j] + 1));
    prev = cur;
  }
  return prev[b.length];
}
const words = (s) => s.toLowerCase().replace(/[^a-z0-9' \n]+/g, " ").split(/\s+/).filter(Boolean).join(" ");

const profile = await mkdtemp(join(tmpdir(), "vkw-live-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.VKW_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${sample}%noloop`,
    "--autoplay-policy=no-user-gesture-required",
  ],
  acceptDownloads: true,
  viewport: { width: 1000, height: 900 },
  timeout: 60_000,
});
let failed = false;
const t0 = Date.now();
const step = (what) => console.log(`live-web.mjs: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
try {
  await context.grantPermissions(["microphone"], { origin: new URL(base).origin });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(90_000);
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  // Every message the server sends on the socket, with its arrival time.
  const frames = [];
  page.on("websocket", (ws) => {
    ws.on("framereceived", (f) => { if (typeof f.payload === "string") frames.push({ t: Date.now(), m: JSON.parse(f.payload) }); });
  });

  step("page, live tab");
  await page.goto(base, { waitUntil: "load" });
  await page.waitForSelector(`#live-model option[value="${model}"]`, { state: "attached" });
  await page.click("#tab-mic");
  assert.ok(await page.isVisible("#panel-mic") && await page.isHidden("#panel-file"));
  await page.selectOption("#live-model", model);
  await page.selectOption("#live-language", "en");

  step("start dictation (the fake microphone plays jfk.wav, 11 s)");
  await page.click("#mic");
  await page.waitForFunction(() => /^Listening/.test(document.getElementById("live-status").textContent));
  const started = Date.now();
  // Committed text appears while the audio still plays.
  await page.waitForFunction(() => document.querySelector("#live-text .committed").textContent.trim().length > 0,
    null, { timeout: 30_000 });
  const firstCommit = (Date.now() - started) / 1000;
  step(`first committed text after ${firstCommit.toFixed(1)} s`);
  assert.ok(firstCommit < 11, `committed text appeared only after ${firstCommit.toFixed(1)} s, once the 11 s of audio had played`);
  const grey = await page.$eval("#live-text .tentative", (e) => getComputedStyle(e).color !== getComputedStyle(e.parentElement).color);
  assert.ok(grey, "tentative text has its own (grey) colour");
  await page.waitForSelector("#lag:not([hidden])");
  assert.match(await page.textContent("#lag"), /^lag \d+\.\d s$/);
  if (shot) await page.screenshot({ path: shot.replace(/(\.png)?$/, "-live.png"), fullPage: true });

  // Let the file play to its end (and the pause after it), then stop.
  const left = 13_000 - (Date.now() - started);
  if (left > 0) await page.waitForTimeout(left);
  step("stop");
  await page.click("#mic");
  await page.waitForFunction(() => /^Stopped/.test(document.getElementById("live-status").textContent), null, { timeout: 120_000 });
  const text = await page.$eval("#live-text", (e) => e.textContent);
  step(`text: ${JSON.stringify(text)}`);
  const d = edits(JFK.split(" "), words(text).split(" "));
  assert.ok(d <= 3, `the live text is the jfk transcript (${d} word edits): ${text}`);
  const fin = frames.find((f) => f.m.type === "final");
  assert.ok(fin, "the server sent its final message");
  assert.equal(words(fin.m.text), words(text), "the page shows the server's final text");
  const updates = frames.filter((f) => f.m.type === "update" && f.m.committed.length);
  assert.ok(updates.length >= 2, `committed text arrived in ${updates.length} update(s)`);

  step("download");
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#live-txt")]);
  assert.equal(dl.suggestedFilename(), "dictation.txt");
  assert.equal(words(await readFile(await dl.path(), "utf8")), words(text));
  assert.deepEqual(problems, [], problems.join("\n"));
  console.log(`live-web.mjs: ok (first committed text ${firstCommit.toFixed(1)} s after start, ${updates.length} updates, final text = jfk)`);
} catch (e) {
  failed = true;
  console.error("live-web.mjs: FAILED:", e && e.stack || e);
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
