// The legacy JavaScript SDK (@google/generative-ai 0.24, still in many apps)
// against hearth serving its default model, the trained SmolLM2-135M-Instruct
// (tests/sdk/run.sh). This SDK sends what the current one does not:
// systemInstruction with role "system", lower-case schema types,
// `safetySettings: []` on every call, function results in a turn of role
// "function", and one-shot uploads with X-Goog-Upload-Protocol: multipart.
// Greedy (temperature 0), with assertions a working pipeline passes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FunctionCallingMode,
  GoogleGenerativeAI,
  HarmBlockThreshold,
  HarmCategory,
  SchemaType,
} from "@google/generative-ai";
import { GoogleAIFileManager } from "@google/generative-ai/server";

const BASE_URL = process.env.GOOGLE_GEMINI_BASE_URL;
const API_KEY = process.env.GEMINI_API_KEY;
assert.ok(BASE_URL && API_KEY, "GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY must be set (tests/sdk/run.sh)");
const OPTS = { baseUrl: BASE_URL };
const genAI = new GoogleGenerativeAI(API_KEY);
const MODEL = "gemini-1.5-flash";
const GREEDY = { temperature: 0, maxOutputTokens: 64 };

test("a system instruction, generation config and safety settings", async () => {
  const model = genAI.getGenerativeModel(
    {
      model: MODEL,
      systemInstruction: "You are a cat. Your name is Neko.",
      generationConfig: GREEDY,
      safetySettings: [{ category: HarmCategory.HARM_CATEGORY_HARASSMENT, threshold: HarmBlockThreshold.BLOCK_ONLY_HIGH }],
    },
    OPTS,
  );
  const result = await model.generateContent("Hello there");
  assert.match(result.response.text(), /Neko/, result.response.text());
  assert.equal(result.response.candidates[0].finishReason !== undefined, true);
});

test("a schema with the SDK's lower-case types is filled sensibly", async () => {
  const model = genAI.getGenerativeModel(
    {
      model: MODEL,
      generationConfig: {
        ...GREEDY,
        responseMimeType: "application/json",
        responseSchema: {
          type: SchemaType.OBJECT,
          properties: { city: { type: SchemaType.STRING }, country: { type: SchemaType.STRING } },
          required: ["city", "country"],
        },
      },
    },
    OPTS,
  );
  const result = await model.generateContent("Paris is the capital of France. Give the city and its country.");
  const value = JSON.parse(result.response.text());
  assert.match(value.city, /Paris/, result.response.text());
  assert.match(value.country, /France/i, result.response.text());
});

test("a stream equals the unary answer, and countTokens the prompt's usage", async () => {
  const model = genAI.getGenerativeModel({ model: MODEL, generationConfig: GREEDY }, OPTS);
  const prompt = "Who wrote Romeo and Juliet?";
  const unary = await model.generateContent(prompt);
  assert.match(unary.response.text(), /Shakespeare/, unary.response.text());
  const stream = await model.generateContentStream(prompt);
  let text = "";
  for await (const chunk of stream.stream) text += chunk.text();
  assert.equal(text, unary.response.text());
  const { totalTokens } = await model.countTokens(prompt);
  assert.equal(totalTokens, unary.response.usageMetadata.promptTokenCount);
});

test("a chat's function call, then its result in a turn of role function", async () => {
  const model = genAI.getGenerativeModel(
    {
      model: MODEL,
      generationConfig: GREEDY,
      tools: [
        {
          functionDeclarations: [
            {
              name: "get_weather",
              description: "The current weather in a city.",
              parameters: { type: SchemaType.OBJECT, properties: { city: { type: SchemaType.STRING } }, required: ["city"] },
            },
          ],
        },
      ],
      toolConfig: { functionCallingConfig: { mode: FunctionCallingMode.ANY, allowedFunctionNames: ["get_weather"] } },
    },
    OPTS,
  );
  const chat = model.startChat();
  const first = await chat.sendMessage("What is the weather in Paris?");
  const calls = first.response.functionCalls();
  assert.equal(calls?.length, 1, JSON.stringify(first.response));
  assert.equal(calls[0].name, "get_weather");
  assert.equal(typeof calls[0].args.city, "string");
  const second = await chat.sendMessage([
    { functionResponse: { name: "get_weather", response: { sky: "clear", temperatureCelsius: 21 } } },
  ]);
  assert.ok(second.response.candidates?.length === 1);
  const roles = (await chat.getHistory()).map((c) => c.role);
  assert.deepEqual(roles, ["user", "model", "function", "model"]);
});

test("a multipart upload, then the file in a prompt", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hearth-legacy-"));
  const path = join(dir, "note.txt");
  writeFileSync(path, "The meeting is on Tuesday at the library.");
  const files = new GoogleAIFileManager(API_KEY, OPTS);
  const upload = await files.uploadFile(path, { mimeType: "text/plain", displayName: "note" });
  assert.equal(upload.file.mimeType, "text/plain");
  assert.equal(upload.file.state, "ACTIVE");
  const got = await files.getFile(upload.file.name);
  assert.equal(got.uri, upload.file.uri);
  const model = genAI.getGenerativeModel({ model: MODEL, generationConfig: GREEDY }, OPTS);
  const result = await model.generateContent([
    { fileData: { mimeType: upload.file.mimeType, fileUri: upload.file.uri } },
    { text: "Where is the meeting?" },
  ]);
  assert.match(result.response.text(), /library/i, result.response.text());
  await files.deleteFile(upload.file.name);
});
