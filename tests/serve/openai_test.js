// The official OpenAI client against `foundry serve`: a completion, a streamed chat
// completion, and an error the client reports as an APIError with the server's status and
// message. Any client-side validation problem throws and fails the test.
"use strict";
const assert = require("node:assert/strict");
const OpenAI = require("openai");

async function main() {
  const client = new OpenAI({ baseURL: process.env.FOUNDRY_URL + "/v1", apiKey: "not-needed", maxRetries: 0 });
  const model = process.env.FOUNDRY_MODEL;

  const models = await client.models.list();
  assert.equal(models.data[0].id, model);

  const completion = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: 12, temperature: 0, logprobs: 2,
  });
  assert.equal(completion.object, "text_completion");
  assert.equal(typeof completion.choices[0].text, "string");
  assert.ok(completion.choices[0].text.length > 0);
  assert.ok(["stop", "length"].includes(completion.choices[0].finish_reason));
  assert.ok(completion.usage.completion_tokens > 0 && completion.usage.completion_tokens <= 12);
  assert.equal(completion.choices[0].logprobs.tokens.length, completion.usage.completion_tokens);
  console.log("completion:", JSON.stringify(completion.choices[0].text));

  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "Tell me about a dog." }], max_tokens: 16, seed: 3,
    stream: true, stream_options: { include_usage: true },
  });
  let text = "", chunks = 0, finish = null, usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    text += chunk.choices[0].delta.content || "";
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.ok(chunks > 2, "several chunks");
  assert.ok(text.length > 0);
  assert.ok(["stop", "length"].includes(finish));
  assert.ok(usage && usage.completion_tokens > 0);
  console.log("streamed chat:", JSON.stringify(text), `(${chunks} chunks)`);

  try {
    await client.completions.create({ model, prompt: "hi", temperature: -1 });
    assert.fail("a negative temperature was accepted");
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, "an APIError, not " + e);
    assert.equal(e.status, 400);
    assert.match(e.message, /temperature/);
    console.log("error:", e.status, e.message);
  }
  try {
    await client.completions.create({ model: "no-such-model", prompt: "hi" });
    assert.fail("an unknown model was accepted");
  } catch (e) {
    assert.ok(e instanceof OpenAI.NotFoundError, "a NotFoundError, not " + e);
  }
  console.log("openai client test passed");
}
main().catch((e) => { console.error(e); process.exit(1); });
