// The official `openai` npm package against a running `vkwhisper serve`.
//
// Starts nothing: VKW_SERVER_URL names a server with tiny.en and base (e.g.
// `vkwhisper serve --model tiny.en --model base`). The reference transcripts
// come from the command line on the same model and options (VKW_BIN, default
// target/release/vkwhisper), cached in VKW_REF_DIR when set.
// Run: node --test client.test.mjs (scripts/server-e2e.sh does).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createReadStream, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";

const url = process.env.VKW_SERVER_URL;
if (!url) {
  console.error("client.test.mjs: set VKW_SERVER_URL (e.g. http://127.0.0.1:8000)");
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const sample = join(root, "samples", "jfk.wav");
const bin = process.env.VKW_BIN || join(root, "target", "release", "vkwhisper");
const refDir = process.env.VKW_REF_DIR || mkdtempSync(join(tmpdir(), "vkw-ref-"));

// The CLI's json and srt for jfk.wav on `model` (cached per model/task/words).
function cli(model, task = "transcribe", words = false) {
  const out = join(refDir, `${model}-${task}-${words ? "words" : "segments"}`);
  if (!existsSync(join(out, "jfk.json"))) {
    const args = ["transcribe", sample, "-f", "json,srt,txt", "-q", "-o", out, "--model", model, "--task", task];
    if (words) args.push("--word-timestamps");
    execFileSync(bin, args, { stdio: "inherit", timeout: 600_000, env: { ...process.env, NODEVICE_SELECT: "1" } });
  }
  return {
    json: JSON.parse(readFileSync(join(out, "jfk.json"), "utf8")),
    srt: readFileSync(join(out, "jfk.srt"), "utf8"),
  };
}
const cliText = (model, task) => cli(model, task).json.text.trim();

// No retries: a 5xx must fail the test, not be retried away.
const client = new OpenAI({
  baseURL: url.replace(/\/$/, "") + "/v1",
  apiKey: process.env.VKW_API_KEY || "none",
  maxRetries: 0,
  timeout: 300_000,
});
const file = () => createReadStream(sample);

test("models", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const id of ["tiny.en", "base", "whisper-1"]) assert.ok(ids.includes(id), `${id} in ${ids}`);
  const m = await client.models.retrieve("tiny.en");
  assert.equal(m.id, "tiny.en");
  await assert.rejects(client.models.retrieve("no-such-model"), (e) => e instanceof OpenAI.NotFoundError && e.code === "model_not_found");
});

test("json", async () => {
  const r = await client.audio.transcriptions.create({ model: "tiny.en", file: file() });
  assert.equal(r.text, cliText("tiny.en"));
  assert.match(r.text, /ask not what your country can do for you/);
  assert.equal(r.usage.type, "duration");
  assert.ok(Math.abs(r.usage.seconds - 11) < 0.01, JSON.stringify(r.usage));
});

test("verbose_json with word and segment timestamps", async () => {
  const r = await client.audio.transcriptions.create({
    model: "tiny.en", file: file(), response_format: "verbose_json", timestamp_granularities: ["word", "segment"],
  });
  const ref = cli("tiny.en", "transcribe", true).json;
  assert.equal(r.text, ref.text.trim());
  assert.equal(r.text, cliText("tiny.en"));
  assert.equal(r.language, "english");
  assert.ok(Math.abs(r.duration - 11) < 0.01);
  assert.deepEqual(r.segments.map((s) => [s.start, s.end, s.text]), ref.segments.map((s) => [s.start, s.end, s.text]));
  r.segments.forEach((s, i) => {
    assert.equal(s.id, i);
    for (const k of ["seek", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"]) {
      assert.notEqual(s[k], undefined, k);
    }
  });
  const refWords = ref.segments.flatMap((s) => s.words.map((w) => [w.word.trim(), w.start, w.end]));
  assert.deepEqual(r.words.map((w) => [w.word, w.start, w.end]), refWords);
  assert.equal(r.words.map((w) => w.word).join(" "), r.text);
});

test("srt", async () => {
  const srt = await client.audio.transcriptions.create({ model: "tiny.en", file: file(), response_format: "srt" });
  assert.equal(typeof srt, "string");
  assert.equal(srt, cli("tiny.en").srt);
  assert.match(srt, /^1\n00:00:00,000 --> /);
});

test("stream", async () => {
  const stream = await client.audio.transcriptions.create({ model: "tiny.en", file: file(), stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  const deltas = events.filter((e) => e.type === "transcript.text.delta").map((e) => e.delta);
  const done = events.filter((e) => e.type === "transcript.text.done");
  assert.ok(deltas.length >= 1, JSON.stringify(events.map((e) => e.type)));
  assert.equal(done.length, 1);
  assert.equal(events[events.length - 1], done[0]);
  assert.equal(deltas.join(""), done[0].text);
  assert.equal(done[0].text, cliText("tiny.en"));
});

test("translate with base", async () => {
  const r = await client.audio.translations.create({ model: "base", file: file() });
  assert.equal(r.text, cliText("base", "translate"));
  assert.match(r.text, /country/);
});

test("translate with an English-only model is a 400 naming model", async () => {
  await assert.rejects(client.audio.translations.create({ model: "tiny.en", file: file() }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.param, "model");
    assert.match(e.message, /English-only/);
    return true;
  });
});

test("unknown model is a 404 model_not_found", async () => {
  await assert.rejects(client.audio.transcriptions.create({ model: "no-such-model", file: file() }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError, String(e));
    assert.equal(e.code, "model_not_found");
    assert.equal(e.param, "model");
    return true;
  });
});

test("extensions reach the server", async () => {
  // Extra keys become form fields: a bad beam_size is a 400 naming it.
  await assert.rejects(client.audio.transcriptions.create({ model: "tiny.en", file: file(), beam_size: 0 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal(e.param, "beam_size");
    return true;
  });
});
