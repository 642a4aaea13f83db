// The guide's system-instruction and chat examples through @google/genai on
// models whose chat templates refuse what Gemini accepts: gemma2t-f32 (a
// Gemma 2-style template: no system role, strictly alternating turns) and
// mistralnemot-f32 (a Mistral Nemo-style one: a system message only with the
// last user turn, alternating turns, 9-character call ids), made by
// testdata/models/make_template_models.py. hearth reshapes every
// conversation into what the template takes (crates/hearth-engine/src/template/shape.rs):
// each request must answer 200, never the template's exception. Also an
// image in the system instruction of the vision model (gemma3v-f32).
// tests/sdk/run.sh serves all three beside the guide's default model.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { GoogleGenAI } from "@google/genai";

const ai = new GoogleGenAI({});
const MODELS = ["gemma2t-f32", "mistralnemot-f32"];
const MAX = 8;
const SEED = 7;
const HISTORY = [
  { role: "user", parts: [{ text: "Hello" }] },
  { role: "model", parts: [{ text: "Great to meet you. What would you like to know?" }] },
];

function assertReply(response) {
  assert.equal(response.candidates?.length, 1);
  const [cand] = response.candidates;
  assert.equal(cand.content?.role, "model");
  assert.ok(["STOP", "MAX_TOKENS"].includes(cand.finishReason), `finishReason ${cand.finishReason}`);
  assert.equal(typeof response.text, "string");
  assert.ok(response.usageMetadata.promptTokenCount > 0);
}

for (const model of MODELS) {
  test(`${model}: GET models says how conversations are shaped for its template`, async () => {
    const m = await ai.models.get({ model });
    assert.match(m.description, /Chat template: .*(system instruction is prepended|consecutive turns of one role are merged)/);
  });

  test(`${model}: the guide's systemInstruction example answers (the template refuses a system role)`, async () => {
    const contents = "Hello there";
    const plain = await ai.models.generateContent({ model, contents, config: { maxOutputTokens: MAX, seed: SEED } });
    assertReply(plain);
    const neko = await ai.models.generateContent({
      model,
      contents,
      config: { systemInstruction: "You are a cat. Your name is Neko.", maxOutputTokens: MAX, seed: SEED },
    });
    assertReply(neko);
    assert.ok(
      neko.usageMetadata.promptTokenCount > plain.usageMetadata.promptTokenCount + 5,
      `the system instruction is in the prompt (${neko.usageMetadata.promptTokenCount} vs ${plain.usageMetadata.promptTokenCount})`,
    );
  });

  test(`${model}: the guide's chat (history, two messages, then a stream) with a system instruction`, async () => {
    const chat = ai.chats.create({
      model,
      history: HISTORY,
      config: { systemInstruction: "You are a cat. Your name is Neko.", maxOutputTokens: MAX, seed: SEED },
    });
    assertReply(await chat.sendMessage({ message: "I have 2 dogs in my house." }));
    assertReply(await chat.sendMessage({ message: "How many paws are in my house?" }));
    const stream = await chat.sendMessageStream({ message: "And cats?" });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assertReply(chunks.at(-1));
    // A streamed reply is kept as one model content per chunk.
    const roles = chat.getHistory(false).map((c) => c.role);
    assert.deepEqual(roles.slice(0, 7), ["user", "model", "user", "model", "user", "model", "user"]);
    assert.ok(roles.length > 7 && roles.slice(7).every((r) => r === "model"), roles.join(","));
  });

  test(`${model}: consecutive user turns, and a model turn with two calls answered without ids`, async () => {
    const consecutive = await ai.models.generateContent({
      model,
      contents: [
        { role: "user", parts: [{ text: "First question: what is 2+2?" }] },
        { role: "user", parts: [{ text: "Second question: what is 3+3?" }] },
      ],
      config: { maxOutputTokens: MAX, seed: SEED },
    });
    assertReply(consecutive);
    const calls = await ai.models.generateContent({
      model,
      contents: [
        { role: "user", parts: [{ text: "Weather in Paris and Rome?" }] },
        {
          role: "model",
          parts: [
            { functionCall: { name: "get_weather", args: { city: "Paris" } } },
            { functionCall: { name: "get_weather", args: { city: "Rome" } } },
          ],
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "get_weather", response: { report: "sunny" } } },
            { functionResponse: { name: "get_weather", response: { report: "rainy" } } },
          ],
        },
      ],
      config: {
        systemInstruction: "Answer with the weather.",
        tools: [
          {
            functionDeclarations: [
              {
                name: "get_weather",
                description: "Weather of a city",
                parameters: { type: "OBJECT", properties: { city: { type: "STRING" } }, required: ["city"] },
              },
            ],
          },
        ],
        maxOutputTokens: MAX,
        seed: SEED,
      },
    });
    assert.equal(calls.candidates?.length, 1);
    assert.ok(calls.usageMetadata.promptTokenCount > consecutive.usageMetadata.promptTokenCount);
  });
}

test("gemma3v-f32: an image in the system instruction is read (counted as IMAGE)", async () => {
  const png = readFileSync(new URL("../../testdata/images/gemma3v-test.png", import.meta.url)).toString("base64");
  const response = await ai.models.generateContent({
    model: "gemma3v-f32",
    contents: "What is this style called?",
    config: {
      systemInstruction: { parts: [{ text: "Describe pictures like this one:" }, { inlineData: { mimeType: "image/png", data: png } }] },
      maxOutputTokens: MAX,
      seed: SEED,
    },
  });
  assertReply(response);
  const image = response.usageMetadata.promptTokensDetails?.find((d) => d.modality === "IMAGE");
  assert.ok(image?.tokenCount > 0, `image tokens counted: ${JSON.stringify(response.usageMetadata.promptTokensDetails)}`);
});

test("gemma3v-f32: an image in the system instruction beside a PDF in contents (IMAGE and DOCUMENT counted)", async () => {
  const png = readFileSync(new URL("../../testdata/images/gemma3v-test.png", import.meta.url)).toString("base64");
  const pdf = readFileSync(new URL("../../testdata/documents/fact.pdf", import.meta.url)).toString("base64");
  const response = await ai.models.generateContent({
    model: "gemma3v-f32",
    contents: [{ role: "user", parts: [{ inlineData: { mimeType: "application/pdf", data: pdf } }, { text: "Summarise it." }] }],
    config: {
      systemInstruction: { parts: [{ text: "Pictures look like this:" }, { inlineData: { mimeType: "image/png", data: png } }] },
      maxOutputTokens: MAX,
      seed: SEED,
    },
  });
  assertReply(response);
  const modalities = Object.fromEntries((response.usageMetadata.promptTokensDetails ?? []).map((d) => [d.modality, d.tokenCount]));
  assert.ok(modalities.IMAGE > 0 && modalities.DOCUMENT > 0, JSON.stringify(modalities));
});

test("a PDF in the system instruction is a 400 that names the part", async () => {
  await assert.rejects(
    ai.models.generateContent({
      model: "gemma3v-f32",
      contents: "Summarise.",
      config: {
        systemInstruction: { parts: [{ inlineData: { mimeType: "application/pdf", data: "JVBERi0xLjQK" } }] },
        maxOutputTokens: MAX,
      },
    }),
    (err) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /system_instruction\.parts\[0\]/);
      return true;
    },
  );
});
