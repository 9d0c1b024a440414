// The web page at `/` in headless Chromium (Debian's, driven by playwright-core):
// upload samples/jfk.wav, see the streamed transcript, download txt, srt and vtt
// and check them against the server's own formats, see a plain-words error,
// and write screenshots (light and dark) for a person to look at.
//
// Starts nothing: the server's URL comes from VKW_SERVER_URL (a server with
// tiny.en, e.g. `vkwhisper serve --model tiny.en --model base`).
// VKW_SCREENSHOT=path.png writes the screenshots (path.png and path-dark.png).
// VKW_CHROMIUM overrides /usr/bin/chromium. Run by scripts/server-e2e.sh.

import { chromium } from "playwright-core";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const base = process.env.VKW_SERVER_URL;
if (!base) {
  console.error("web.mjs: set VKW_SERVER_URL (e.g. http://127.0.0.1:8000)");
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const sample = join(root, "samples", "jfk.wav");
const model = process.env.VKW_MODEL || "tiny.en";
const shot = process.env.VKW_SCREENSHOT;
const PHRASE = "ask not what your country can do for you";

// jfk.wav repeated `n` times (a PCM WAV with one `data` chunk): a file of
// several 30 s windows, to see progress and segments arrive one by one.
async function repeatedWav(n) {
  const wav = await readFile(sample);
  let at = 12;
  while (at + 8 <= wav.length && wav.toString("ascii", at, at + 4) !== "data") {
    at += 8 + wav.readUInt32LE(at + 4);
  }
  assert.ok(at + 8 <= wav.length, "jfk.wav has a data chunk");
  const header = Buffer.from(wav.subarray(0, at + 8));
  const data = wav.subarray(at + 8, at + 8 + wav.readUInt32LE(at + 4));
  header.writeUInt32LE(data.length * n, at + 4);
  header.writeUInt32LE(header.length - 8 + data.length * n, 4);
  return Buffer.concat([header, ...Array(n).fill(data)]);
}

// The server's own rendering of jfk.wav in `format`, for comparison.
async function serverFormat(format) {
  const fd = new FormData();
  fd.append("file", new Blob([await readFile(sample)]), "jfk.wav");
  fd.append("model", model);
  fd.append("response_format", format);
  const r = await fetch(new URL("/v1/audio/transcriptions", base), { method: "POST", body: fd });
  assert.equal(r.status, 200, `server ${format}: ${r.status}`);
  return r.text();
}

const profile = await mkdtemp(join(tmpdir(), "vkw-web-chromium-"));
// A fresh profile (playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.VKW_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  acceptDownloads: true,
  viewport: { width: 1000, height: 900 },
  timeout: 60_000,
});
let failed = false;
const t0 = Date.now();
const step = (what) => console.log(`web.mjs: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(90_000);
  const origin = new URL(base).origin;
  const problems = [];
  page.on("console", (m) => {
    // Chromium logs every non-2xx answer; the one 400 below is on purpose.
    if (m.type() === "error" && !/status of 400/.test(m.text())) problems.push("console: " + m.text());
  });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  // Record the form fields of every POST the page makes.
  await page.addInitScript(() => {
    window.__posts = [];
    const real = window.fetch;
    window.fetch = (url, init) => {
      if (init && init.body instanceof FormData) {
        const fields = {};
        for (const [k, v] of init.body.entries()) fields[k] = typeof v === "string" ? v : "(file " + v.name + ")";
        window.__posts.push({ url: String(url), fields });
      }
      return real(url, init);
    };
  });
  page.on("request", (req) => {
    const u = req.url();
    if (!u.startsWith(origin) && !u.startsWith("blob:") && !u.startsWith("data:")) {
      problems.push("request outside the server: " + u);
    }
  });

  step("page, models, languages");
  // 1. The page loads, lists the server's models and Whisper's languages.
  const resp = await page.goto(base, { waitUntil: "load" });
  assert.equal(resp.status(), 200);
  await page.waitForSelector(`#model option[value="${model}"]`, { state: "attached" });
  const langs = await page.$$eval("#language option", (o) => o.map((x) => x.value));
  assert.equal(langs[0], "", "auto-detect first");
  assert.equal(langs.length, 101, "auto + 100 Whisper languages");
  assert.ok(await page.isEnabled("#tab-mic"), "the live microphone tab is there (tested by live-web.mjs)");

  step("English-only model cannot translate");
  // 2. A plain-words error: an English-only model cannot translate (400 naming `model`).
  await page.selectOption("#model", model);
  await page.setInputFiles("#file", sample);
  await page.check("input[name=task][value=translate]");
  await page.click("#go");
  await page.waitForSelector("#error:not([hidden])");
  const err = await page.textContent("#error");
  assert.match(err, /English-only/, err);
  assert.match(err, /field: model/, err);
  assert.match(err, /HTTP 400/, err);

  step("streamed transcription");
  // 3. Transcribe: streamed with progress, the transcript appears.
  await page.check("input[name=task][value=transcribe]");
  await page.selectOption("#format", "text");
  await page.click("#go");
  await page.waitForFunction(() => /^Done/.test(document.getElementById("status").textContent));
  assert.ok(await page.isHidden("#error"), "no error after a good run");
  const live = (await page.textContent("#transcript")).toLowerCase();
  assert.ok(live.includes(PHRASE), `transcript: ${live}`);
  const posts = await page.evaluate(() => window.__posts);
  const post = posts[posts.length - 1];
  assert.equal(new URL(post.url, base).pathname, "/v1/audio/transcriptions");
  assert.deepEqual(post.fields, { file: "(file jfk.wav)", model, stream: "true", progress: "true", response_format: "json" });

  step("downloads");
  // 4. Downloads equal the server's own formats.
  async function download(fmt) {
    const [d] = await Promise.all([page.waitForEvent("download"), page.click(`#downloads [data-fmt="${fmt}"]`)]);
    const path = await d.path();
    return { name: d.suggestedFilename(), text: await readFile(path, "utf8") };
  }
  const txt = await download("text");
  assert.equal(txt.name, "jfk.txt");
  assert.equal(txt.text, await serverFormat("text"), "txt = the server's text format");
  const srt = await download("srt");
  assert.equal(srt.name, "jfk.srt");
  assert.match(srt.text, /^1\n00:00:00,000 --> 00:00:\d\d,\d{3}\n/, srt.text);
  assert.ok(srt.text.toLowerCase().includes(PHRASE), srt.text);
  assert.equal(srt.text, await serverFormat("srt"), "srt = the server's srt");
  const vtt = await download("vtt");
  assert.equal(vtt.text, await serverFormat("vtt"), "vtt = the server's vtt");
  const json = JSON.parse((await download("json")).text);
  assert.deepEqual(json, JSON.parse(await serverFormat("json")), "json = the server's json");
  const verbose = JSON.parse((await download("verbose_json")).text);
  assert.equal(verbose.language, "english");
  assert.ok(verbose.segments.length >= 1);
  // After the timed pass the transcript shows segments with their times.
  assert.ok(await page.isVisible("#transcript time"), "segments with times shown");
  if (shot) {
    await page.screenshot({ path: shot, fullPage: true });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: shot.replace(/(\.png)?$/, "-dark.png"), fullPage: true });
    await page.emulateMedia({ colorScheme: "light" });
  }

  step("longer file, progress");
  // 5. A longer file (jfk × 3, 33 s: two windows): the progress bar moves
  // and the text arrives in more than one piece.
  const long = { name: "jfk-x3.wav", mimeType: "audio/wav", buffer: await repeatedWav(3) };
  await page.setInputFiles("#file", long);
  await page.selectOption("#format", "json");
  await page.evaluate(() => {
    window.__seen = { bar: [], spans: 0 };
    const bar = document.getElementById("bar");
    new MutationObserver(() => {
      if (!bar.hidden && bar.hasAttribute("value")) window.__seen.bar.push([bar.value, bar.max]);
    }).observe(bar, { attributes: true });
  });
  await page.click("#go");
  await page.waitForFunction(() => document.querySelectorAll("#transcript span").length >= 1);
  if (shot) await page.screenshot({ path: shot.replace(/(\.png)?$/, "-running.png"), fullPage: true });
  await page.waitForFunction(() => /^Done/.test(document.getElementById("status").textContent));
  const seen = await page.evaluate(() => ({ ...window.__seen, spans: document.querySelectorAll("#transcript span").length }));
  assert.ok(seen.spans >= 2, `text arrived in ${seen.spans} piece(s)`);
  assert.ok(seen.bar.length >= 1, "progress events moved the bar");
  const [, max] = seen.bar[seen.bar.length - 1];
  assert.ok(Math.abs(max - 33) < 0.5, `progress total ${max} s`);
  assert.ok((await page.textContent("#transcript")).toLowerCase().split(PHRASE).length - 1 >= 2);

  step("cancel");
  // 6. Cancel: the page stops and says so.
  await page.click("#go");
  await page.waitForSelector("#cancel:not([hidden])");
  await page.click("#cancel");
  await page.waitForFunction(() => /^Cancelled/.test(document.getElementById("status").textContent));
  assert.ok(await page.isEnabled("#go"), "the form is usable again");
  assert.deepEqual(problems, [], problems.join("\n"));

  step("API key");
  // 7. A server started with --api-key (VKW_KEYED_URL, VKW_KEYED_API_KEY): the page
  // asks for the key, keeps it in sessionStorage and sends it as a Bearer header.
  const keyed = process.env.VKW_KEYED_URL, apiKey = process.env.VKW_KEYED_API_KEY;
  if (keyed && apiKey) {
    const p2 = await context.newPage();
    p2.setDefaultTimeout(90_000);
    p2.on("pageerror", (e) => problems.push("page error (keyed): " + e.message));
    await p2.goto(keyed, { waitUntil: "load" });
    await p2.waitForSelector("#key-row:not([hidden])");
    await p2.fill("#key", "wrong-key");
    await p2.press("#key", "Enter");
    await p2.waitForSelector("#error:not([hidden])");
    assert.match(await p2.textContent("#error"), /API key was not accepted/);
    await p2.fill("#key", apiKey);
    await p2.press("#key", "Enter");
    await p2.waitForSelector(`#model option[value="${model}"]`, { state: "attached" });
    assert.equal(await p2.evaluate(() => sessionStorage.getItem("vkwhisper.apiKey")), apiKey);
    await p2.selectOption("#model", model);
    await p2.selectOption("#format", "text");
    await p2.setInputFiles("#file", sample);
    await p2.click("#go");
    await p2.waitForFunction(() => /^Done/.test(document.getElementById("status").textContent));
    assert.ok((await p2.textContent("#transcript")).toLowerCase().includes(PHRASE));
    assert.ok(await p2.isHidden("#error"));
    await p2.close();
    assert.deepEqual(problems, [], problems.join("\n"));
  }
  console.log("web.mjs: ok (page loads, error shown, streamed transcript, txt/srt/vtt/json/verbose downloads match the server, progress on a 33 s file, cancel" + (process.env.VKW_KEYED_URL ? ", API key" : "") + ")");
} catch (e) {
  failed = true;
  console.error("web.mjs: FAILED:", e && e.stack || e);
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
