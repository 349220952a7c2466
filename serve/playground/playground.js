// The playground: sends the prompt to /v1/completions (or the conversation to
// /v1/chat/completions) with "stream": true and "foundry_probs", reads the Server-Sent Events as
// they arrive, and shows every token coloured by its probability, with its alternatives on hover.
// Plain browser JavaScript: no build step, no library.
"use strict";

const $ = (id) => document.getElementById(id);
let modelName = null;
let controller = null;  // aborts the request in flight (Stop button)
const chatHistory = [];

// Probability -> background colour: red (0) through yellow to green (1). The square root
// spreads the low end, where most of the interesting tokens are.
function colour(p) {
  return `hsl(${Math.round(120 * Math.sqrt(Math.max(0, Math.min(1, p))))}, 75%, 85%)`;
}

function settings() {
  const num = (id) => Number($(id).value);
  return {
    temperature: num("temperature"), top_k: num("top_k"), top_p: num("top_p"),
    max_tokens: num("max_tokens"), seed: num("seed"),
  };
}

function visible(text) {  // whitespace you can see in the tooltip
  return JSON.stringify(text).slice(1, -1);
}

function alternativesTable(title, list, chosenId) {
  const col = document.createElement("div");
  const h = document.createElement("h3");
  h.textContent = title;
  col.appendChild(h);
  for (const a of list) {
    const row = document.createElement("div");
    row.className = "alt" + (a.id === chosenId ? " chosen" : "");
    row.dataset.prob = a.prob;
    const p = document.createElement("span");
    p.className = "p";
    p.textContent = (100 * a.prob).toFixed(1) + "%";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.max(1, Math.round(60 * a.prob)) + "px";
    const t = document.createElement("span");
    t.textContent = "'" + visible(a.text) + "'";
    row.append(p, bar, t);
    col.appendChild(row);
  }
  return col;
}

function showTip(span, info) {
  const tip = $("tip");
  tip.replaceChildren(
    alternativesTable("before (the model)", info.before, info.id),
    alternativesTable("after temperature / top-k / top-p", info.after, info.id));
  const r = span.getBoundingClientRect();
  tip.style.left = (window.scrollX + r.left) + "px";
  tip.style.top = (window.scrollY + r.bottom + 4) + "px";
  tip.hidden = false;
}

function tokenSpan(info, text) {
  const span = document.createElement("span");
  span.className = "tok";
  span.textContent = text;
  span.style.background = colour(info.prob);
  span.dataset.prob = info.prob;
  span.addEventListener("mouseenter", () => showTip(span, info));
  span.addEventListener("mouseleave", () => { $("tip").hidden = true; });
  return span;
}

// Reads an SSE response: calls onChunk(json) for every "data:" line until [DONE].
async function readEvents(response, onChunk) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;  // ": waiting" comments keep the line open
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onChunk(JSON.parse(data));
      }
    }
  }
}

async function stream(path, body, target) {
  controller = new AbortController();
  $("generate").disabled = true;
  $("send").disabled = true;
  $("stop").disabled = false;
  $("status").textContent = "generating…";
  let tokens = 0;
  let finish = null;
  let text = "";
  const started = performance.now();
  try {
    const response = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: modelName, stream: true, foundry_probs: 5, ...settings(), ...body }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const err = await response.json();
      throw new Error(err.error ? err.error.message : response.statusText);
    }
    await readEvents(response, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices[0];
      if (!choice) return;
      const piece = choice.text !== undefined ? choice.text : (choice.delta && choice.delta.content) || "";
      text += piece;
      // One span per token; text held back by a stop string arrives later with no token.
      const infos = choice.foundry || [];
      if (infos.length) {
        for (const info of infos) { target.appendChild(tokenSpan(info, info.text)); tokens++; }
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    });
    const seconds = (performance.now() - started) / 1000;
    $("status").textContent = `done: ${tokens} tokens in ${seconds.toFixed(2)} s, finish_reason ${finish}`;
  } catch (e) {
    $("status").textContent = e.name === "AbortError" ? "stopped" : "error: " + e.message;
  } finally {
    controller = null;
    $("generate").disabled = false;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
  return text;
}

$("generate").addEventListener("click", () => {
  const prompt = $("prompt").value;
  const out = $("output");
  out.replaceChildren();
  const p = document.createElement("span");
  p.className = "prompt-text";
  p.textContent = prompt;
  out.appendChild(p);
  stream("/v1/completions", { prompt }, out);
});

$("stop").addEventListener("click", () => { if (controller) controller.abort(); });

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg";
  const r = document.createElement("span");
  r.className = "role";
  r.textContent = role + ":";
  div.appendChild(r);
  if (text !== undefined) div.appendChild(document.createTextNode(text));
  $("chat-log").appendChild(div);
  return div;
}

$("send").addEventListener("click", async () => {
  const content = $("chat-input").value.trim();
  if (!content) return;
  $("chat-input").value = "";
  chatHistory.push({ role: "user", content });
  addMessage("user", content);
  const reply = addMessage("assistant");
  const text = await stream("/v1/chat/completions", { messages: chatHistory }, reply);
  chatHistory.push({ role: "assistant", content: text });
});

for (const [tab, pane] of [["tab-complete", "complete-pane"], ["tab-chat", "chat-pane"]]) {
  $(tab).addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.remove("active");
    $(tab).classList.add("active");
    $("complete-pane").hidden = pane !== "complete-pane";
    $("chat-pane").hidden = pane !== "chat-pane";
  });
}

fetch("/v1/models").then((r) => r.json()).then((list) => {
  const m = list.data[0];
  modelName = m.id;
  $("model").textContent = `${m.id} · context ${m.context_length} tokens`;
  $("max_tokens").max = m.max_tokens;
  $("tab-chat").hidden = !m.chat_template;  // a chat tab only for a model with a chat template
});
