// The real-model tier: the guide's examples through the official JavaScript
// SDK (@google/genai) against hearth serving its default model, the trained
// SmolLM2-135M-Instruct (tests/sdk/run.sh starts `hearth serve` with no
// --model). Every generation runs at temperature 0, so each answer is the
// model's greedy one, and the assertions are ones a trained model passes and
// a broken pipeline (a wrong template, tokenizer, sampler, KV reuse, history
// or grammar) fails: a factual answer, the system instruction obeyed, a
// second chat turn that uses the first, a schema filled with sensible values,
// a stream equal to the unary answer.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GoogleGenAI, Type, createPartFromBase64, createPartFromUri, createUserContent } from "@google/genai";

assert.ok(process.env.GOOGLE_GEMINI_BASE_URL, "GOOGLE_GEMINI_BASE_URL must point at hearth (tests/sdk/run.sh)");
const ai = new GoogleGenAI({});
const MODEL = "gemini-2.5-flash";
const GREEDY = { temperature: 0, maxOutputTokens: 64 };

/** Most words are English ones: the answer is prose in English, not noise. */
function assertEnglish(text) {
  const words = text.toLowerCase().match(/[a-z']+/g) ?? [];
  assert.ok(words.length >= 8, `too few words: ${JSON.stringify(text)}`);
  const common = new Set(
    "the a an is are of to and in it that this for on with as by be can or from its they you i at which".split(" "),
  );
  const hits = words.filter((w) => common.has(w)).length;
  assert.ok(hits / words.length > 0.15, `not English prose: ${JSON.stringify(text)}`);
  const ascii = [...text].filter((c) => c.charCodeAt(0) < 128).length;
  assert.ok(ascii / text.length > 0.95, `not English prose: ${JSON.stringify(text)}`);
}

test("the default model is the built-in SmolLM2-135M-Instruct", async () => {
  const model = await ai.models.get({ model: MODEL });
  assert.equal(model.name, "models/smollm2-135m-instruct");
  // Its own default sampling (the model card's), not Gemini's 1.0 / 0.95.
  assert.equal(model.temperature, 0.2);
  assert.equal(model.topP, 0.9);
  assert.equal(model.outputTokenLimit, 1024);
  assert.ok(!/\/|\.gguf/.test(model.description ?? ""), `a path in the description: ${model.description}`);
});

test("the guide's first example answers in English", async () => {
  const response = await ai.models.generateContent({
    model: MODEL,
    contents: "How does AI work?",
    config: GREEDY,
  });
  assertEnglish(response.text);
  assert.match(response.text, /\b(AI|artificial intelligence|machine|learn|data|computer)/i, response.text);
  assert.equal(response.candidates[0].finishReason !== undefined, true);
});

test("a factual question is answered correctly", async () => {
  const response = await ai.models.generateContent({
    model: MODEL,
    contents: "Who wrote Romeo and Juliet?",
    config: GREEDY,
  });
  assert.match(response.text, /Shakespeare/, response.text);
});

test("the system instruction is followed", async () => {
  const response = await ai.models.generateContent({
    model: MODEL,
    contents: "Hello there",
    config: { ...GREEDY, systemInstruction: "You are a cat. Your name is Neko." },
  });
  assert.match(response.text, /Neko/, response.text);
  // Without it, the model does not call itself Neko: the instruction did it.
  const plain = await ai.models.generateContent({ model: MODEL, contents: "Hello there", config: GREEDY });
  assert.doesNotMatch(plain.text, /Neko/, plain.text);
});

test("a chat's second turn uses the first", async () => {
  const chat = ai.chats.create({ model: MODEL, config: GREEDY });
  await chat.sendMessage({ message: "I have a cat named Mochi." });
  const second = await chat.sendMessage({ message: "What is my cat's name?" });
  assert.match(second.text, /Mochi/, second.text);
  assert.equal(chat.getHistory().length, 4);
  // A fresh chat that never heard it does not know.
  const fresh = ai.chats.create({ model: MODEL, config: GREEDY });
  const blind = await fresh.sendMessage({ message: "What is my cat's name?" });
  assert.doesNotMatch(blind.text, /Mochi/, blind.text);
});

test("a JSON schema is filled with sensible values", async () => {
  const response = await ai.models.generateContent({
    model: MODEL,
    contents: "Paris is the capital of France. Give the city and its country.",
    config: {
      ...GREEDY,
      responseMimeType: "application/json",
      responseSchema: {
        type: Type.OBJECT,
        properties: { city: { type: Type.STRING }, country: { type: Type.STRING } },
        required: ["city", "country"],
        propertyOrdering: ["city", "country"],
      },
    },
  });
  const value = JSON.parse(response.text);
  assert.deepEqual(Object.keys(value), ["city", "country"]);
  assert.match(value.city, /Paris/, response.text);
  assert.match(value.country, /France/i, response.text);
});

test("a stream equals the unary answer", async () => {
  const request = { model: MODEL, contents: "Explain how AI works", config: GREEDY };
  const unary = await ai.models.generateContent(request);
  let streamed = "";
  let chunks = 0;
  for await (const chunk of await ai.models.generateContentStream(request)) {
    streamed += chunk.text ?? "";
    chunks += 1;
  }
  assert.ok(chunks > 1, `one chunk only`);
  assert.equal(streamed, unary.text);
  assertEnglish(streamed);
});

test("a PDF uploaded with files.upload is read: the answer is written only in it", async () => {
  // testdata/documents/fact.pdf (made by make_pdfs.py): "The office cat is named Biscuit."
  const path = fileURLToPath(new URL("../../testdata/documents/fact.pdf", import.meta.url));
  const file = await ai.files.upload({ file: path });
  assert.equal(file.mimeType, "application/pdf");
  const question = "What is the name of the office cat?";
  const contents = createUserContent([createPartFromUri(file.uri, file.mimeType), question]);
  const response = await ai.models.generateContent({ model: MODEL, contents, config: GREEDY });
  assert.match(response.text, /Biscuit/, response.text);
  const usage = response.usageMetadata;
  const doc = usage.promptTokensDetails.find((d) => d.modality === "DOCUMENT");
  assert.ok(doc && doc.tokenCount > 10, JSON.stringify(usage));
  const counted = await ai.models.countTokens({ model: MODEL, contents });
  assert.equal(counted.totalTokens, usage.promptTokenCount);
  // (@google/genai 3.1.0 keeps only totalTokens of a countTokens response.)
  // Inline bytes, streamed: the same answer.
  const inline = createUserContent([createPartFromBase64(readFileSync(path).toString("base64"), "application/pdf"), question]);
  let streamed = "";
  for await (const chunk of await ai.models.generateContentStream({ model: MODEL, contents: inline, config: GREEDY })) {
    streamed += chunk.text ?? "";
  }
  assert.equal(streamed, response.text);
  await ai.files.delete({ name: file.name });
});
