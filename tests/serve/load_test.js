// A bounded load test on loopback: WAVES waves of CLIENTS concurrent clients, each sending a few
// requests (streamed and not, some cut off mid-stream). Every request must end in a complete
// answer or an error response with a JSON body; nothing may hang or vanish. The server's
// resident memory after the last wave must stay within a small margin of after the first (the
// KV caches are allocated up front, so load must not grow it).
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");

const url = process.env.FOUNDRY_URL, model = process.env.FOUNDRY_MODEL, pid = process.env.FOUNDRY_SERVER_PID;
const CLIENTS = Number(process.env.CLIENTS || 24), PER_CLIENT = Number(process.env.PER_CLIENT || 4);
const WAVES = Number(process.env.WAVES || 3);
const deadline = Date.now() + 240 * 1000;

function rssKiB() {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

async function one(i) {
  const stream = i % 2 === 0, abort = i % 7 === 3;
  const controller = new AbortController();
  const body = { model, prompt: ["Once upon a time", "The dog", "Lily"][i % 3], max_tokens: 8 + (i % 20),
                 temperature: 0.8, seed: i, stream };
  const res = await fetch(url + "/v1/completions", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    signal: controller.signal,
  });
  if (res.status !== 200) {
    const err = await res.json();  // must be an OpenAI-shaped error
    assert.ok(err.error && err.error.message, "an error body");
    return "error " + res.status;
  }
  if (!stream) {
    const j = await res.json();
    assert.ok(["stop", "length"].includes(j.choices[0].finish_reason));
    return "ok";
  }
  const reader = res.body.getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
    if (abort && text.length > 0) { controller.abort(); return "aborted"; }  // a client that hangs up
  }
  assert.ok(text.trimEnd().endsWith("data: [DONE]"), "the stream ended with [DONE]");
  return "ok";
}

async function wave(w) {
  const outcomes = {};
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    for (let k = 0; k < PER_CLIENT; k++) {
      assert.ok(Date.now() < deadline, "the load test ran past its time bound");
      let r;
      try { r = await one(w * 1000 + c * PER_CLIENT + k); } catch (e) { if (e.name === "AbortError") r = "aborted"; else throw e; }
      outcomes[r] = (outcomes[r] || 0) + 1;
    }
  }));
  const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
  assert.equal(total, CLIENTS * PER_CLIENT, "every request accounted for");
  return outcomes;
}

async function main() {
  const rss = [];
  for (let w = 0; w < WAVES; w++) {
    const outcomes = await wave(w);
    rss.push(rssKiB());
    console.log(`wave ${w + 1}: ${JSON.stringify(outcomes)}, server RSS ${rss[w]} KiB`);
  }
  // The server is still healthy and idle: every slot was given back.
  const health = await (await fetch(url + "/health")).json();
  assert.equal(health.status, "ok");
  let metrics = "";
  for (let i = 0; i < 50; i++) {
    metrics = await (await fetch(url + "/metrics")).text();
    if (/foundry_active_sequences 0\b/.test(metrics)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(metrics, /foundry_active_sequences 0\b/, "all slots free after the load");
  const growth = rss[rss.length - 1] - rss[0];
  assert.ok(growth < Math.max(8192, 0.1 * rss[0]), `memory grew by ${growth} KiB between the first and last wave`);
  console.log(`load test passed: ${WAVES} waves of ${CLIENTS} clients x ${PER_CLIENT} requests; RSS growth ${growth} KiB`);
}
main().catch((e) => { console.error(e); process.exit(1); });
