// Greedy generation in the real llama.cpp (the prebuilt binaries of the pinned npm package
// node-llama-cpp), for tests/interop/llama_cpp.sh and bench/llama_cpp_speed.sh.
//
//   node llama_cpp_generate.mjs NODE_DIR FILE.gguf PROMPT_IDS MAX_NEW STOP_IDS THREADS [PROMPT_TEXT]
//
// PROMPT_IDS and STOP_IDS are comma-separated token ids (STOP_IDS may be empty). The prompt is
// fed as ids, exactly those our engine used, so the comparison is of the model alone; when
// PROMPT_TEXT is given, llama.cpp's own tokenization of it is printed too, to check the exported
// tokenizer. Prints one JSON object: {"tokenize": [...], "new": [...], "decode_seconds": s}.
import path from "node:path";
import { pathToFileURL } from "node:url";

const [nodeDir, gguf, promptArg, maxNewArg, stopArg, threadsArg, promptText] = process.argv.slice(2);
const ids = (s) => (s ? s.split(",").filter((x) => x !== "").map(Number) : []);
const entry = path.join(nodeDir, "node_modules", "node-llama-cpp", "dist", "index.js");
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(entry).href);

// The prebuilt CPU binary only: never download, never compile, never use a GPU.
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: gguf });
const prompt = ids(promptArg);
const maxNew = Number(maxNewArg);
const stop = new Set(ids(stopArg));
const threads = Number(threadsArg);
const context = await model.createContext({
  contextSize: Math.min(model.trainContextSize, Math.max(prompt.length + maxNew + 1, 16)),
  threads: { ideal: threads, min: threads },
  batchSize: Math.max(prompt.length, 1),
});
const sequence = context.getSequence();
const out = [];
let first = 0;
const start = process.hrtime.bigint();
// temperature 0 is greedy (argmax), with no repeat penalty: the same rule as ours.
for await (const token of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
  if (out.length === 0) first = process.hrtime.bigint();
  if (stop.has(token)) break;
  out.push(token);
  if (out.length >= maxNew) break;
}
const end = process.hrtime.bigint();
// The first new token costs the prompt's forward pass; the rest are one decode step each.
const decodeSeconds = out.length > 1 ? Number(end - first) / 1e9 : 0;
const result = { new: out, decode_seconds: decodeSeconds, decode_tokens: Math.max(out.length - 1, 0) };
if (promptText !== undefined) result.tokenize = model.tokenize(promptText, false);
console.log(JSON.stringify(result));
await context.dispose();
await model.dispose();
await llama.dispose();
