// SDK conformance: every example of the Gemini text-generation guide
// (shared/seed/gemini-text-generation-guide.fr.txt), run through the official
// JavaScript SDK (@google/genai 3.1.0) against a running hearth.
//
// The SDK is pointed at hearth only through the environment, as an app would be:
//   GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT GEMINI_API_KEY=anything node --test
// (tests/sdk/run.sh starts hearth and sets both). Two tests also cover the
// explicit httpOptions.baseUrl and httpOptions.apiVersion = "v1beta".
//
// hearth serves a tiny random-weight model in CI: answers are gibberish, so the
// assertions are about structure and meaning (roles, counts, history,
// determinism at temperature 0), never about the text itself. The model
// thinks (Qwen 3): unless thinkingBudget is 0 every reply starts with a hidden
// thought, capped at THINK_CAP tokens by run.sh; thinking_output_tools.test.mjs
// covers thinking, structured output and function calling in depth.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  ApiError,
  GoogleGenAI,
  createPartFromBase64,
  createPartFromUri,
  createUserContent,
} from "@google/genai";

const BASE_URL = process.env.GOOGLE_GEMINI_BASE_URL;
const API_KEY = process.env.GEMINI_API_KEY;
assert.ok(BASE_URL, "GOOGLE_GEMINI_BASE_URL must point at a running hearth (see tests/sdk/run.sh)");
assert.ok(API_KEY, "GEMINI_API_KEY must be set (any value; hearth checks it only with --api-key)");

// The guide's model name; hearth maps every gemini-* name to the model it serves.
const MODEL = "gemini-2.5-flash";
const THINK_CAP = 16; // run.sh starts hearth with --max-thinking-tokens 16
// maxOutputTokens for every generation: it covers the thought and the answer
// (as on Gemini), so room for a capped thought plus 8 answer tokens.
const MAX = THINK_CAP + 8;
const SEED = 1234; // sampled generations are reproducible
// A valid 1x1 PNG, standing in for the guide's organ.png.
const PNG_1X1 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const HISTORY = [
  { role: "user", parts: [{ text: "Hello" }] },
  { role: "model", parts: [{ text: "Great to meet you. What would you like to know?" }] },
];

// Exactly as the guide writes it: the environment does the rest.
const ai = new GoogleGenAI({});

// The local model hearth reports, learnt once through models.get.
let servedModel;
async function served() {
  servedModel ??= await ai.models.get({ model: MODEL });
  return servedModel;
}

/**
 * A well-formed unary (or last streamed) reply: one model candidate, usage
 * consistent. thinks: false when the request set thinkingBudget 0.
 */
async function assertReply(response, { maxTokens = MAX, thinks = true } = {}) {
  assert.ok(Array.isArray(response.candidates), "candidates is an array");
  assert.equal(response.candidates.length, 1);
  const [cand] = response.candidates;
  assert.equal(cand.content?.role, "model", "candidates[0].content.role is 'model'");
  assert.ok(cand.content.parts.length > 0, "the reply has parts");
  for (const part of cand.content.parts) {
    assert.equal(typeof part.text, "string", "text-only model answers text parts");
    assert.notEqual(part.thought, true, "thought parts only with includeThoughts (the guide never asks for them)");
  }
  assert.ok(["STOP", "MAX_TOKENS"].includes(cand.finishReason), `finishReason ${cand.finishReason}`);
  assert.equal(typeof response.text, "string", "response.text is a string");
  const u = response.usageMetadata;
  assert.ok(u, "usageMetadata present");
  assert.ok(u.promptTokenCount > 0, "promptTokenCount > 0");
  const thoughts = u.thoughtsTokenCount ?? 0;
  if (thinks) {
    assert.ok(thoughts > 0 && thoughts <= THINK_CAP, `the model thought, within the server's cap (thoughtsTokenCount ${thoughts})`);
  } else {
    assert.ok(!u.thoughtsTokenCount, "no thought tokens with thinkingBudget 0");
  }
  assert.ok(
    u.candidatesTokenCount >= 1 && u.candidatesTokenCount + thoughts <= maxTokens,
    `candidatesTokenCount ${u.candidatesTokenCount} + thoughtsTokenCount ${thoughts} within maxOutputTokens ${maxTokens}`,
  );
  if (cand.finishReason === "MAX_TOKENS") assert.equal(u.candidatesTokenCount + thoughts, maxTokens);
  assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount + thoughts);
  const model = await served();
  assert.equal(`models/${response.modelVersion}`, model.name, "modelVersion names the local model");
  assert.ok(response.responseId, "responseId present");
}

/** Parses the Gemini error JSON that ApiError carries as its message. */
function errorBody(err) {
  assert.ok(err instanceof ApiError, `expected ApiError, got ${err?.name}: ${err?.message}`);
  const body = JSON.parse(err.message);
  assert.ok(body.error, "error body is {error: {...}}");
  return body.error;
}

const textOf = (content) => content.parts.map((p) => p.text ?? "").join("");

test("guide: generateContent with a text prompt (env base URL, default API version v1)", async () => {
  const response = await ai.models.generateContent({
    model: MODEL,
    contents: "How does AI work?",
    config: { maxOutputTokens: MAX, seed: SEED },
  });
  await assertReply(response);
  assert.ok(response.text.length > 0, "some text came back");
});

test("guide: thinkingBudget 0 succeeds and reports no thought tokens", async () => {
  const response = await ai.models.generateContent({
    model: MODEL,
    contents: "How does AI work?",
    config: { thinkingConfig: { thinkingBudget: 0 }, maxOutputTokens: MAX, seed: SEED },
  });
  await assertReply(response, { thinks: false });
  assert.ok(!response.usageMetadata.thoughtsTokenCount, "thoughtsTokenCount absent or 0");
  assert.ok(!response.candidates[0].content.parts.some((p) => p.thought), "no thought parts");
});

test("an invalid thinkingConfig is refused with 400 (budget below -1; budget and level together)", async () => {
  for (const thinkingConfig of [{ thinkingBudget: -2 }, { thinkingBudget: 1024, thinkingLevel: "LOW" }]) {
    await assert.rejects(
      ai.models.generateContent({
        model: MODEL,
        contents: "How does AI work?",
        config: { thinkingConfig, maxOutputTokens: MAX },
      }),
      (err) => {
        const e = errorBody(err);
        assert.equal(err.status, 400);
        assert.equal(e.status, "INVALID_ARGUMENT");
        assert.match(e.message, /thinking/i);
        return true;
      },
    );
  }
});

test("guide: systemInstruction reaches the prompt; countTokens agrees with usage", async () => {
  const contents = "Hello there";
  const plain = await ai.models.generateContent({
    model: MODEL,
    contents,
    config: { maxOutputTokens: MAX, seed: SEED },
  });
  await assertReply(plain);
  const withSystem = await ai.models.generateContent({
    model: MODEL,
    contents,
    config: { systemInstruction: "You are a cat. Your name is Neko.", maxOutputTokens: MAX, seed: SEED },
  });
  await assertReply(withSystem);
  assert.ok(
    withSystem.usageMetadata.promptTokenCount > plain.usageMetadata.promptTokenCount,
    `system instruction adds prompt tokens (${withSystem.usageMetadata.promptTokenCount} > ${plain.usageMetadata.promptTokenCount})`,
  );
  // The Developer API's countTokens takes contents only (the SDK refuses a
  // systemInstruction there); for the same contents it must match the usage.
  const counted = await ai.models.countTokens({ model: MODEL, contents });
  assert.equal(counted.totalTokens, plain.usageMetadata.promptTokenCount);
});

test("guide: temperature 0.1 is honoured", async () => {
  const response = await ai.models.generateContent({
    model: MODEL,
    contents: "Explain how AI works",
    config: { temperature: 0.1, maxOutputTokens: MAX, seed: SEED },
  });
  await assertReply(response);
});

test("guide: generateContentStream; at temperature 0 the chunks add up to the unary answer", async () => {
  const config = { temperature: 0, maxOutputTokens: MAX };
  const unary = await ai.models.generateContent({ model: MODEL, contents: "Explain how AI works", config });
  await assertReply(unary);
  const again = await ai.models.generateContent({ model: MODEL, contents: "Explain how AI works", config });
  assert.equal(again.text, unary.text, "temperature 0 is deterministic");

  const stream = await ai.models.generateContentStream({ model: MODEL, contents: "Explain how AI works", config });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 1, "at least one chunk");
  for (const [i, chunk] of chunks.entries()) {
    const cand = chunk.candidates?.[0];
    assert.equal(cand?.content?.role, "model", `chunk ${i} has role model`);
    assert.ok(cand.content.parts.length > 0, `chunk ${i} has parts`);
    assert.equal(typeof chunk.text, "string", `chunk ${i} has text`);
    assert.equal(chunk.responseId, chunks[0].responseId, "one responseId for the whole stream");
    if (i < chunks.length - 1) assert.equal(cand.finishReason, undefined, `only the last chunk finishes (chunk ${i})`);
  }
  const last = chunks.at(-1);
  await assertReply(last);
  assert.equal(last.candidates[0].finishReason, unary.candidates[0].finishReason);
  assert.equal(chunks.map((c) => c.text).join(""), unary.text, "streamed text == unary text");
  assert.equal(last.usageMetadata.promptTokenCount, unary.usageMetadata.promptTokenCount);
  assert.equal(last.usageMetadata.candidatesTokenCount, unary.usageMetadata.candidatesTokenCount);
  assert.equal(last.usageMetadata.thoughtsTokenCount, unary.usageMetadata.thoughtsTokenCount, "the same hidden thought");
});

test("guide: chat with history, two sendMessage calls; curated history is in order", async () => {
  const chat = ai.chats.create({
    model: MODEL,
    history: HISTORY,
    config: { maxOutputTokens: MAX, seed: SEED },
  });
  const response1 = await chat.sendMessage({ message: "I have 2 dogs in my house." });
  await assertReply(response1);
  const response2 = await chat.sendMessage({ message: "How many paws are in my house?" });
  await assertReply(response2);

  const history = chat.getHistory(true);
  assert.deepEqual(
    history.map((c) => c.role),
    ["user", "model", "user", "model", "user", "model"],
  );
  assert.equal(textOf(history[0]), "Hello");
  assert.equal(textOf(history[1]), "Great to meet you. What would you like to know?");
  assert.equal(textOf(history[2]), "I have 2 dogs in my house.");
  assert.deepEqual(history[3], response1.candidates[0].content, "reply 1 recorded as received");
  assert.equal(textOf(history[4]), "How many paws are in my house?");
  assert.deepEqual(history[5], response2.candidates[0].content, "reply 2 recorded as received");
  assert.deepEqual(chat.getHistory(false).map((c) => c.role), history.map((c) => c.role), "nothing was dropped from the curated history");
  // The second request carried the whole conversation, reply 1 included.
  assert.ok(
    response2.usageMetadata.promptTokenCount > response1.usageMetadata.promptTokenCount,
    "the second prompt contains the first exchange",
  );
});

test("guide: streamed chat keeps every streamed chunk in history and can continue", async () => {
  const chat = ai.chats.create({
    model: MODEL,
    history: HISTORY,
    config: { maxOutputTokens: MAX, seed: SEED },
  });
  const chunks1 = [];
  for await (const chunk of await chat.sendMessageStream({ message: "I have 2 dogs in my house." })) chunks1.push(chunk);
  assert.ok(chunks1.length >= 1);
  assert.ok(chunks1.at(-1).candidates[0].finishReason, "the last chunk carries finishReason");

  // sdk-wire §7: one model history entry per streamed chunk, as received.
  let history = chat.getHistory(true);
  assert.deepEqual(
    history.map((c) => c.role),
    ["user", "model", "user", ...chunks1.map(() => "model")],
    "the streamed turn is kept (not dropped as invalid)",
  );
  assert.equal(textOf(history[2]), "I have 2 dogs in my house.");
  chunks1.forEach((chunk, i) => assert.deepEqual(history[3 + i], chunk.candidates[0].content));

  // The next request carries several consecutive model turns; hearth must accept them.
  const chunks2 = [];
  for await (const chunk of await chat.sendMessageStream({ message: "How many paws are in my house?" })) chunks2.push(chunk);
  assert.ok(chunks2.length >= 1);
  await assertReply(chunks2.at(-1));
  assert.ok(
    chunks2.at(-1).usageMetadata.promptTokenCount > chunks1.at(-1).usageMetadata.promptTokenCount,
    "the second prompt contains the streamed reply",
  );
  history = chat.getHistory(true);
  assert.deepEqual(
    history.map((c) => c.role),
    ["user", "model", "user", ...chunks1.map(() => "model"), "user", ...chunks2.map(() => "model")],
  );
  assert.equal(textOf(history[3 + chunks1.length]), "How many paws are in my house?");
});

test("guide: an image for a text-only model is refused with the documented 400", async () => {
  await assert.rejects(
    ai.models.generateContent({
      model: MODEL,
      contents: [
        createUserContent(["Tell me about this instrument", createPartFromBase64(PNG_1X1, "image/png")]),
      ],
      config: { maxOutputTokens: MAX },
    }),
    (err) => {
      const e = errorBody(err);
      assert.equal(err.status, 400);
      assert.equal(e.code, 400);
      assert.equal(e.status, "INVALID_ARGUMENT");
      assert.match(e.message, /cannot read image\/png/);
      return true;
    },
  );
});

// The tiny Gemma 3 vision model (run.sh loads it with its projector), and two
// 64x64 test images standing in for the guide's organ.png.
const VISION = "gemma3v-f32";
const IMAGE = fileURLToPath(new URL("../../testdata/images/gemma3v-test.png", import.meta.url));
const IMAGE2 = fileURLToPath(new URL("../../testdata/images/gemma3v-test2.png", import.meta.url));
const IMAGE_TOKENS = 4; // mm_tokens_per_image of the tiny projector

test("guide: an uploaded image, referred to by its URI, is read by a vision model", async () => {
  // Exactly the guide's example, with the vision model's name.
  const image = await ai.files.upload({ file: IMAGE });
  assert.equal(image.mimeType, "image/png");
  const request = (part) => ({
    model: VISION,
    contents: [createUserContent(["Tell me about this instrument", part])],
    config: { temperature: 0, maxOutputTokens: 8, responseLogprobs: true },
  });
  const response = await ai.models.generateContent(request(createPartFromUri(image.uri, image.mimeType)));
  const cand = response.candidates[0];
  assert.ok(["STOP", "MAX_TOKENS"].includes(cand.finishReason), cand.finishReason);
  const usage = response.usageMetadata;
  assert.deepEqual(
    usage.promptTokensDetails.find((d) => d.modality === "IMAGE"),
    { modality: "IMAGE", tokenCount: IMAGE_TOKENS },
  );
  const text = usage.promptTokensDetails.find((d) => d.modality === "TEXT").tokenCount;
  assert.equal(text + IMAGE_TOKENS, usage.promptTokenCount);
  // countTokens counts the image too.
  const counted = await ai.models.countTokens({
    model: VISION,
    contents: [createUserContent(["Tell me about this instrument", createPartFromUri(image.uri, image.mimeType)])],
  });
  assert.equal(counted.totalTokens, usage.promptTokenCount);
  // Streamed = unary at temperature 0, the same image sent inline this time.
  const inline = createPartFromBase64(readFileSync(IMAGE).toString("base64"), "image/png");
  let streamed = "";
  for await (const chunk of await ai.models.generateContentStream(request(inline))) streamed += chunk.text ?? "";
  assert.equal(streamed, response.text ?? "");
  // The model reads the pixels: another image, another first-token distribution.
  const other = await ai.models.generateContent(
    request(createPartFromBase64(readFileSync(IMAGE2).toString("base64"), "image/png")),
  );
  const first = (r) => r.candidates[0].logprobsResult.chosenCandidates[0].logProbability;
  assert.notEqual(first(other), first(response));
  // A format the projector cannot decode is a 400 naming the part.
  await assert.rejects(
    ai.models.generateContent(request(createPartFromBase64(PNG_1X1, "image/webp"))),
    (err) => {
      assert.equal(err.status, 400);
      assert.match(errorBody(err).message, /cannot read image\/webp/);
      return true;
    },
  );
});

test("countTokens matches the prompt usage of generateContent, for one and several turns", async () => {
  const single = "The quick brown fox jumps over the lazy dog.";
  const turns = [
    { role: "user", parts: [{ text: "Hello" }] },
    { role: "model", parts: [{ text: "Hi! How can I help?" }] },
    { role: "user", parts: [{ text: "Tell me a joke." }] },
  ];
  for (const contents of [single, turns]) {
    const counted = await ai.models.countTokens({ model: MODEL, contents });
    assert.ok(Number.isInteger(counted.totalTokens) && counted.totalTokens > 0);
    // A thought of at most THINK_CAP tokens, then room for an answer (its
    // leading whitespace is dropped, so one token may show as nothing), seeded.
    const response = await ai.models.generateContent({ model: MODEL, contents, config: { maxOutputTokens: THINK_CAP + 8, seed: SEED } });
    await assertReply(response, { maxTokens: THINK_CAP + 8 });
    assert.equal(counted.totalTokens, response.usageMetadata.promptTokenCount);
  }
  const one = await ai.models.countTokens({ model: MODEL, contents: "Hello" });
  const many = await ai.models.countTokens({ model: MODEL, contents: turns });
  assert.ok(many.totalTokens > one.totalTokens, "more turns, more tokens");
});

test("models.list and models.get describe the served model", async () => {
  const pager = await ai.models.list();
  const models = [];
  for await (const m of pager) models.push(m);
  assert.ok(models.length >= 1, "at least one model listed");
  for (const m of models) {
    assert.match(m.name, /^models\/./);
    assert.ok(m.inputTokenLimit > 0 && m.outputTokenLimit > 0);
    for (const action of ["generateContent", "streamGenerateContent", "countTokens"]) {
      assert.ok(m.supportedActions.includes(action), `${m.name} supports ${action}`);
    }
  }
  const viaAlias = await ai.models.get({ model: MODEL });
  assert.ok(models.some((m) => m.name === viaAlias.name), `${MODEL} resolves to a listed model (${viaAlias.name})`);
  const direct = await ai.models.get({ model: viaAlias.name });
  assert.equal(direct.name, viaAlias.name);
  assert.equal(direct.displayName, viaAlias.displayName);
  assert.equal(direct.inputTokenLimit, viaAlias.inputTokenLimit);
  // Paging with a small page size still lists every model once.
  const paged = [];
  for await (const m of await ai.models.list({ config: { pageSize: 1 } })) paged.push(m.name);
  assert.deepEqual(paged, models.map((m) => m.name));
});

test("an unknown model is a 404 NOT_FOUND ApiError (generateContent and models.get)", async () => {
  for (const call of [
    () => ai.models.generateContent({ model: "no-such-model", contents: "hi" }),
    () => ai.models.get({ model: "no-such-model" }),
  ]) {
    await assert.rejects(call(), (err) => {
      const e = errorBody(err);
      assert.equal(err.status, 404);
      assert.equal(e.code, 404);
      assert.equal(e.status, "NOT_FOUND");
      assert.match(e.message, /models\/no-such-model/);
      assert.match(e.message, /API version v1\b/, "the SDK's default API version is v1");
      return true;
    });
  }
});

test("explicit httpOptions.baseUrl wins over the environment", async () => {
  const saved = process.env.GOOGLE_GEMINI_BASE_URL;
  process.env.GOOGLE_GEMINI_BASE_URL = "http://127.0.0.1:9"; // nothing listens there
  let explicit;
  try {
    explicit = new GoogleGenAI({ apiKey: API_KEY, httpOptions: { baseUrl: saved } });
  } finally {
    process.env.GOOGLE_GEMINI_BASE_URL = saved;
  }
  const response = await explicit.models.generateContent({
    model: MODEL,
    contents: "How does AI work?",
    config: { maxOutputTokens: MAX, seed: SEED },
  });
  await assertReply(response);
});

test("httpOptions.apiVersion v1beta reaches /v1beta", async () => {
  const beta = new GoogleGenAI({ apiKey: API_KEY, httpOptions: { baseUrl: BASE_URL, apiVersion: "v1beta" } });
  const response = await beta.models.generateContent({
    model: MODEL,
    contents: "How does AI work?",
    config: { maxOutputTokens: MAX, seed: SEED },
  });
  await assertReply(response);
  const chunks = [];
  for await (const chunk of await beta.models.generateContentStream({
    model: MODEL,
    contents: "Explain how AI works",
    config: { maxOutputTokens: MAX, seed: SEED },
  })) chunks.push(chunk);
  await assertReply(chunks.at(-1));
  const counted = await beta.models.countTokens({ model: MODEL, contents: "How does AI work?" });
  assert.ok(counted.totalTokens > 0);
  // The error message names the API version the request came in on.
  await assert.rejects(beta.models.get({ model: "no-such-model" }), (err) => {
    assert.equal(err.status, 404);
    assert.match(errorBody(err).message, /API version v1beta/);
    return true;
  });
});
