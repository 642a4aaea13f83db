// SDK conformance: thinking, structured output and function calling through the
// official JavaScript SDK (@google/genai 3.1.0) against a running hearth.
//
// Set up like guide.test.mjs (tests/sdk/run.sh starts hearth and points the SDK
// at it through GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY). hearth serves a tiny
// random-weight Qwen 3 whose vocabulary has <think> </think> <tool_call> </tool_call>:
// its text is gibberish, so the assertions are about structure and meaning
// (which parts, in which order, token counts, schemas obeyed, calls valid
// against their declarations), never about the words.
//
// Budgets: run.sh caps every thought at 16 tokens (--max-thinking-tokens 16),
// and maxOutputTokens covers thought and answer together, as on Gemini. The
// schemas keep every output bounded (enums, maxLength, integer ranges,
// maxItems), so even a random model completes them within maxOutputTokens.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ApiError,
  FunctionCallingConfigMode,
  GoogleGenAI,
  Type,
  createPartFromFunctionResponse,
  createUserContent,
} from "@google/genai";

assert.ok(process.env.GOOGLE_GEMINI_BASE_URL, "GOOGLE_GEMINI_BASE_URL must point at a running hearth (see tests/sdk/run.sh)");
assert.ok(process.env.GEMINI_API_KEY, "GEMINI_API_KEY must be set");

const MODEL = "gemini-2.5-flash";
const THINK_CAP = 16; // run.sh: --max-thinking-tokens 16 (dynamic thinking included)
const SEEDS = [1, 2, 3]; // sampled runs at temperature 1
const THOUGHT_MAX = 40; // maxOutputTokens of the thinking tests: a capped thought + an answer

const ai = new GoogleGenAI({});

let servedModel;
async function served() {
  servedModel ??= await ai.models.get({ model: MODEL });
  return servedModel;
}

/**
 * maxOutputTokens for constrained output and calls. The test vocabulary is
 * almost one character per token, so a JSON object or a call takes 40-80
 * tokens: hearth must allow that much (run.sh's --max-output-tokens).
 */
async function outputBudget(wanted) {
  const limit = (await served()).outputTokenLimit;
  assert.ok(limit >= wanted, `hearth's outputTokenLimit is ${limit}: start it with --max-output-tokens >= ${wanted} (tests/sdk/run.sh)`);
  return wanted;
}

/** Parses the Gemini error JSON that ApiError carries as its message. */
function errorBody(err) {
  assert.ok(err instanceof ApiError, `expected ApiError, got ${err?.name}: ${err?.message}`);
  const body = JSON.parse(err.message);
  assert.ok(body.error, "error body is {error: {...}}");
  return body.error;
}

/** A 400 INVALID_ARGUMENT whose message matches `pattern`. */
async function assertInvalid(promise, pattern) {
  await assert.rejects(promise, (err) => {
    const e = errorBody(err);
    assert.equal(err.status, 400);
    assert.equal(e.code, 400);
    assert.equal(e.status, "INVALID_ARGUMENT");
    assert.match(e.message, pattern);
    return true;
  });
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

function assertSignature(part, what) {
  assert.equal(typeof part.thoughtSignature, "string", `${what} carries a thoughtSignature`);
  assert.match(part.thoughtSignature, BASE64, "thoughtSignature is base64");
  assert.ok(Buffer.from(part.thoughtSignature, "base64").length > 0, "thoughtSignature decodes to bytes");
}

// ---------------------------------------------------------------------------
// A small validator for the schema subset used here: Gemini Schema (upper-case
// types, nullable, propertyOrdering) and plain JSON Schema (lower-case types,
// type arrays, additionalProperties). Fails with the path of the first problem.
// `closed`: objects take no undeclared keys (hearth closes Gemini Schema objects).
// ---------------------------------------------------------------------------

function isType(type, v) {
  switch (type) {
    case "string":
      return typeof v === "string";
    case "integer":
      return Number.isInteger(v);
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "boolean":
      return typeof v === "boolean";
    case "array":
      return Array.isArray(v);
    case "object":
      return v !== null && typeof v === "object" && !Array.isArray(v);
    case "null":
      return v === null;
    default:
      throw new Error(`validator: unknown type ${type}`);
  }
}

function validate(schema, value, path = "$", { closed = false } = {}) {
  const show = JSON.stringify(value);
  const types = [].concat(schema.type ?? []).map((t) => t.toLowerCase());
  if (value === null) {
    const nullOk =
      schema.nullable === true ||
      types.includes("null") ||
      (schema.enum ?? []).includes(null) ||
      (schema.anyOf ?? []).some((alt) => alt.nullable === true || [].concat(alt.type ?? []).map((t) => t.toLowerCase()).includes("null"));
    assert.ok(nullOk, `${path}: null is not allowed here`);
    return;
  }
  if (schema.anyOf) {
    const fits = schema.anyOf.filter((alt) => {
      try {
        validate(alt, value, path, { closed });
        return true;
      } catch {
        return false;
      }
    });
    assert.ok(fits.length > 0, `${path}: ${show} matches none of anyOf`);
  }
  if (types.length) assert.ok(types.some((t) => isType(t, value)), `${path}: ${show} is not of type ${types.join("|")}`);
  if (schema.enum) assert.ok(schema.enum.includes(value), `${path}: ${show} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === "string") {
    const n = [...value].length;
    if (schema.minLength != null) assert.ok(n >= Number(schema.minLength), `${path}: ${show} shorter than ${schema.minLength}`);
    if (schema.maxLength != null) assert.ok(n <= Number(schema.maxLength), `${path}: ${show} longer than ${schema.maxLength}`);
  }
  if (typeof value === "number") {
    if (schema.minimum != null) assert.ok(value >= schema.minimum, `${path}: ${value} < minimum ${schema.minimum}`);
    if (schema.maximum != null) assert.ok(value <= schema.maximum, `${path}: ${value} > maximum ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems != null) assert.ok(value.length >= Number(schema.minItems), `${path}: fewer than ${schema.minItems} items`);
    if (schema.maxItems != null) assert.ok(value.length <= Number(schema.maxItems), `${path}: more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((v, i) => validate(schema.items, v, `${path}[${i}]`, { closed }));
  }
  if (isType("object", value)) {
    const props = schema.properties ?? {};
    const keys = Object.keys(value);
    for (const name of schema.required ?? []) assert.ok(keys.includes(name), `${path}: required ${name} missing in ${show}`);
    if (closed || schema.additionalProperties === false) {
      for (const k of keys) assert.ok(k in props, `${path}: undeclared key ${k} in ${show}`);
    }
    for (const k of keys) if (k in props) validate(props[k], value[k], `${path}.${k}`, { closed });
    if (schema.propertyOrdering) {
      assert.deepEqual(keys, schema.propertyOrdering.filter((k) => keys.includes(k)), `${path}: keys follow propertyOrdering`);
    }
  }
}

// ---------------------------------------------------------------------------
// Thinking
// ---------------------------------------------------------------------------

/**
 * A reply of the thinking model. budget: 0 (thinking off) or the most thought
 * tokens allowed. Returns the thought text and the answer text.
 */
function assertThinking(response, { budget, includeThoughts, maxTokens = THOUGHT_MAX }) {
  assert.equal(response.candidates?.length, 1, "one candidate");
  const [cand] = response.candidates;
  assert.equal(cand.content?.role, "model");
  assert.ok(["STOP", "MAX_TOKENS"].includes(cand.finishReason), `finishReason ${cand.finishReason}`);
  const parts = cand.content.parts ?? [];
  assert.ok(parts.length > 0, "the reply has parts");
  let thought = "";
  let answer = "";
  let answered = false;
  for (const [i, part] of parts.entries()) {
    assert.equal(typeof part.text, "string", `part ${i} is text`);
    if (part.thought === true) {
      assert.ok(includeThoughts && budget > 0, `part ${i}: thought parts only with includeThoughts and a thinking budget`);
      assert.ok(!answered, `part ${i}: thought parts come before the answer`);
      thought += part.text;
    } else {
      assert.equal(part.thought, undefined, `part ${i}: answer parts carry no thought flag`);
      answered = true;
      answer += part.text;
    }
  }
  if (includeThoughts && budget > 0) {
    assert.equal(parts[0].thought, true, "the reply starts with a thought part");
    assert.ok(thought.length > 0, "the thought has text");
  }
  assert.ok(!/<\/?think>/.test(answer), `no thinking markup in the answer: ${JSON.stringify(answer)}`);
  assert.equal(response.text ?? "", answer, "response.text is the answer without the thought");

  const u = response.usageMetadata;
  assert.ok(u, "usageMetadata");
  const thoughts = u.thoughtsTokenCount ?? 0;
  if (budget === 0) {
    assert.ok(!u.thoughtsTokenCount, `thinking off: no thoughtsTokenCount (got ${u.thoughtsTokenCount})`);
    assert.ok(!parts.some((p) => p.thoughtSignature), "thinking off: no thoughtSignature");
  } else {
    assert.ok(thoughts > 0 && thoughts <= budget, `thoughtsTokenCount ${thoughts} in (0, ${budget}]`);
    assertSignature(parts.find((p) => !p.thought), "the first answer part");
  }
  assert.ok(u.promptTokenCount > 0);
  assert.ok(u.candidatesTokenCount >= 1, "the answer has tokens");
  assert.ok(u.candidatesTokenCount + thoughts <= maxTokens, `thoughts ${thoughts} + answer ${u.candidatesTokenCount} within maxOutputTokens ${maxTokens}`);
  if (cand.finishReason === "MAX_TOKENS") {
    assert.equal(u.candidatesTokenCount + thoughts, maxTokens, "maxOutputTokens covers thought and answer");
  }
  assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount + thoughts, "total = prompt + candidates + thoughts");
  return { thought, answer };
}

test("models.get: the Qwen 3 model thinks", async () => {
  const model = await served();
  assert.equal(model.thinking, true);
});

test("thinkingBudget 0: no thought parts, no thoughtsTokenCount, no signature (includeThoughts or not)", async () => {
  for (const includeThoughts of [undefined, false, true]) {
    const response = await ai.models.generateContent({
      model: MODEL,
      contents: "How does AI work?",
      config: { maxOutputTokens: THOUGHT_MAX, seed: 5, thinkingConfig: { thinkingBudget: 0, includeThoughts } },
    });
    assertThinking(response, { budget: 0, includeThoughts });
  }
});

test("thinkingBudget 8: the model thinks first, at most 8 tokens; thought parts only with includeThoughts", async () => {
  for (const seed of SEEDS) {
    for (const includeThoughts of [undefined, false, true]) {
      const response = await ai.models.generateContent({
        model: MODEL,
        contents: "How does AI work?",
        config: { maxOutputTokens: THOUGHT_MAX, seed, temperature: 1, thinkingConfig: { thinkingBudget: 8, includeThoughts } },
      });
      assertThinking(response, { budget: 8, includeThoughts });
    }
  }
});

test("dynamic thinking (thinkingBudget -1, or no thinkingConfig) is capped by the server", async () => {
  const configs = [
    { thinkingConfig: { thinkingBudget: -1 } },
    { thinkingConfig: { thinkingBudget: -1, includeThoughts: true } },
    { thinkingConfig: { includeThoughts: true } },
    {},
  ];
  for (const extra of configs) {
    const response = await ai.models.generateContent({
      model: MODEL,
      contents: "Explain how AI works",
      config: { maxOutputTokens: THOUGHT_MAX, seed: 3, ...extra },
    });
    assertThinking(response, { budget: THINK_CAP, includeThoughts: extra.thinkingConfig?.includeThoughts });
  }
});

test("includeThoughts only changes what is shown: same answer and counts at temperature 0", async () => {
  const run = (includeThoughts) =>
    ai.models.generateContent({
      model: MODEL,
      contents: "Why is the sky blue?",
      config: { maxOutputTokens: THOUGHT_MAX, temperature: 0, thinkingConfig: { thinkingBudget: 8, includeThoughts } },
    });
  const hidden = await run(false);
  const shown = await run(true);
  const h = assertThinking(hidden, { budget: 8, includeThoughts: false });
  const s = assertThinking(shown, { budget: 8, includeThoughts: true });
  assert.equal(s.answer, h.answer, "the same answer");
  assert.equal(shown.usageMetadata.thoughtsTokenCount, hidden.usageMetadata.thoughtsTokenCount);
  assert.equal(shown.usageMetadata.candidatesTokenCount, hidden.usageMetadata.candidatesTokenCount);
  assert.equal(shown.candidates[0].finishReason, hidden.candidates[0].finishReason);
});

test("streaming with includeThoughts: thoughts first, then the answer; both equal the unary reply at temperature 0", async () => {
  const config = { maxOutputTokens: THOUGHT_MAX, temperature: 0, thinkingConfig: { thinkingBudget: 8, includeThoughts: true } };
  const unary = await ai.models.generateContent({ model: MODEL, contents: "Explain how AI works", config });
  const u = assertThinking(unary, { budget: 8, includeThoughts: true });

  const chunks = [];
  for await (const chunk of await ai.models.generateContentStream({ model: MODEL, contents: "Explain how AI works", config })) chunks.push(chunk);
  assert.ok(chunks.length >= 2, "a thought chunk and an answer chunk at least");
  let thought = "";
  let answer = "";
  let firstAnswerPart;
  for (const [i, chunk] of chunks.entries()) {
    const cand = chunk.candidates?.[0];
    assert.equal(cand?.content?.role, "model", `chunk ${i} has role model`);
    assert.ok(cand.content.parts?.length > 0, `chunk ${i} has parts`);
    assert.equal(chunk.responseId, chunks[0].responseId, "one responseId for the whole stream");
    if (i < chunks.length - 1) assert.equal(cand.finishReason, undefined, `only the last chunk finishes (chunk ${i})`);
    for (const part of cand.content.parts) {
      assert.equal(typeof part.text, "string");
      if (part.thought === true) {
        assert.equal(firstAnswerPart, undefined, `chunk ${i}: no thought after the answer started`);
        thought += part.text;
      } else {
        firstAnswerPart ??= part;
        answer += part.text;
      }
    }
  }
  assert.equal(chunks[0].candidates[0].content.parts[0].thought, true, "the first chunk is a thought");
  assert.equal(chunks[0].text, undefined, "a thought-only chunk has no response.text");
  assertSignature(firstAnswerPart, "the first streamed answer part");
  assert.equal(thought, u.thought, "streamed thought == unary thought");
  assert.equal(answer, u.answer, "streamed answer == unary answer");
  assert.equal(chunks.map((c) => c.text ?? "").join(""), unary.text, "the chunks' response.text add up to the unary text");
  const last = chunks.at(-1);
  assert.equal(last.candidates[0].finishReason, unary.candidates[0].finishReason);
  for (const k of ["promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount"]) {
    assert.equal(last.usageMetadata[k], unary.usageMetadata[k], `last chunk ${k} == unary`);
  }
});

test("a chat sends thought parts and thoughtSignatures back; hearth accepts them", async () => {
  const chat = ai.chats.create({
    model: MODEL,
    config: { maxOutputTokens: THOUGHT_MAX, seed: 11, thinkingConfig: { thinkingBudget: 8, includeThoughts: true } },
  });
  const r1 = await chat.sendMessage({ message: "I have 2 dogs in my house." });
  assertThinking(r1, { budget: 8, includeThoughts: true });
  const chunks = [];
  for await (const c of await chat.sendMessageStream({ message: "How many paws are in my house?" })) chunks.push(c);
  assert.ok(chunks.at(-1).candidates[0].finishReason, "the stream finished");
  assert.ok(chunks.at(-1).usageMetadata.promptTokenCount > r1.usageMetadata.promptTokenCount, "the second prompt holds the first exchange");
  const r3 = await chat.sendMessage({ message: "And cats?" });
  assertThinking(r3, { budget: 8, includeThoughts: true });

  const history = chat.getHistory(true);
  assert.deepEqual(
    history.map((c) => c.role),
    ["user", "model", "user", ...chunks.map(() => "model"), "user", "model"],
    "no turn was dropped",
  );
  assert.deepEqual(history[1], r1.candidates[0].content, "reply 1 (thought part, signature) recorded as received");
  assert.equal(history[1].parts[0].thought, true);
  assert.ok(history[1].parts.some((p) => p.thoughtSignature), "the signature went back in the history");
  assert.deepEqual(history.at(-1), r3.candidates[0].content);
});

// ---------------------------------------------------------------------------
// Structured output
// ---------------------------------------------------------------------------

/** generateContent over SEEDS at temperature 1; each reply's text must be JSON valid against `check`. */
async function eachSeed(config, check) {
  const maxOutputTokens = await outputBudget(300);
  for (const seed of SEEDS) {
    const response = await ai.models.generateContent({
      model: MODEL,
      contents: "Describe an order as JSON.",
      config: { maxOutputTokens, seed, temperature: 1, thinkingConfig: { thinkingBudget: 0 }, ...config },
    });
    const cand = response.candidates?.[0];
    assert.equal(cand?.content?.role, "model");
    assert.equal(cand.finishReason, "STOP", `seed ${seed}: the constrained answer completes (${JSON.stringify(response.text)})`);
    assert.ok(!response.usageMetadata.thoughtsTokenCount, "thinkingBudget 0");
    assert.equal(typeof response.text, "string");
    check(response.text, seed);
  }
}

function parseJson(text, seed) {
  try {
    return JSON.parse(text);
  } catch (e) {
    assert.fail(`seed ${seed}: response.text is not JSON (${e.message}): ${JSON.stringify(text)}`);
  }
}

test("responseSchema OBJECT: enum, integer range, boolean, bounded string; keys in propertyOrdering order", async () => {
  const schema = {
    type: Type.OBJECT,
    properties: {
      size: { type: Type.STRING, enum: ["S", "M", "L"] },
      qty: { type: Type.INTEGER, minimum: 1, maximum: 9 },
      gift: { type: Type.BOOLEAN },
      note: { type: Type.STRING, maxLength: 6 },
    },
    required: ["size", "qty", "gift"],
    propertyOrdering: ["qty", "size", "gift", "note"],
  };
  await eachSeed({ responseMimeType: "application/json", responseSchema: schema }, (text, seed) => {
    const value = parseJson(text, seed);
    validate(schema, value, "$", { closed: true });
    assert.deepEqual(Object.keys(value).slice(0, 3), ["qty", "size", "gift"], "required keys first, in propertyOrdering order");
  });
});

test("responseSchema ARRAY: items with enum, minItems/maxItems", async () => {
  const schema = { type: Type.ARRAY, items: { type: Type.STRING, enum: ["red", "green", "blue"] }, minItems: 1, maxItems: 3 };
  await eachSeed({ responseMimeType: "application/json", responseSchema: schema }, (text, seed) => {
    const value = parseJson(text, seed);
    assert.ok(Array.isArray(value), "an array");
    validate(schema, value, "$", { closed: true });
  });
});

test("responseSchema anyOf and nullable", async () => {
  const schema = {
    type: Type.OBJECT,
    properties: {
      v: { anyOf: [{ type: Type.INTEGER, minimum: 0, maximum: 99 }, { type: Type.STRING, enum: ["none", "many"] }] },
      w: { type: Type.STRING, enum: ["x", "y"], nullable: true },
    },
    required: ["v", "w"],
    propertyOrdering: ["v", "w"],
  };
  await eachSeed({ responseMimeType: "application/json", responseSchema: schema }, (text, seed) => {
    validate(schema, parseJson(text, seed), "$", { closed: true });
  });
});

test("responseJsonSchema (plain JSON Schema): valid output, keys in the schema's order", async () => {
  const schema = {
    type: "object",
    properties: {
      city: { type: "string", enum: ["Paris", "Lyon"] },
      temp: { type: "integer", minimum: -20, maximum: 40 },
      tags: { type: "array", items: { type: "string", maxLength: 4 }, maxItems: 2 },
      rain: { type: ["boolean", "null"] },
    },
    required: ["city", "temp", "rain"],
    additionalProperties: false,
  };
  await eachSeed({ responseMimeType: "application/json", responseJsonSchema: schema }, (text, seed) => {
    const value = parseJson(text, seed);
    validate(schema, value);
    const order = Object.keys(schema.properties);
    assert.deepEqual(Object.keys(value), order.filter((k) => k in value), "keys in the order the schema declares them");
  });
});

test("text/x.enum: the text is exactly one of the values; application/json with an enum gives a JSON string", async () => {
  const values = ["Percussion", "String", "Woodwind", "Brass", "Keyboard"];
  const schema = { type: Type.STRING, enum: values };
  await eachSeed({ responseMimeType: "text/x.enum", responseSchema: schema }, (text) => {
    assert.ok(values.includes(text), `${JSON.stringify(text)} is one of the values`);
  });
  await eachSeed({ responseMimeType: "application/json", responseSchema: schema }, (text, seed) => {
    const value = parseJson(text, seed);
    assert.ok(values.includes(value), `${text} is one of the values`);
  });
});

test("streamed JSON adds up to the unary JSON at temperature 0", async () => {
  const schema = {
    type: Type.OBJECT,
    properties: { size: { type: Type.STRING, enum: ["S", "M", "L"] }, qty: { type: Type.INTEGER, minimum: 1, maximum: 9 } },
    required: ["size", "qty"],
    propertyOrdering: ["size", "qty"],
  };
  const config = {
    maxOutputTokens: await outputBudget(300),
    temperature: 0,
    thinkingConfig: { thinkingBudget: 0 },
    responseMimeType: "application/json",
    responseSchema: schema,
  };
  const unary = await ai.models.generateContent({ model: MODEL, contents: "An order, please.", config });
  validate(schema, JSON.parse(unary.text), "$", { closed: true });
  const chunks = [];
  for await (const c of await ai.models.generateContentStream({ model: MODEL, contents: "An order, please.", config })) chunks.push(c);
  assert.equal(chunks.map((c) => c.text ?? "").join(""), unary.text);
  assert.equal(chunks.at(-1).candidates[0].finishReason, "STOP");
});

test("schemas hearth cannot enforce, or that are wrong, are a 400 naming the field", async () => {
  const config = { maxOutputTokens: 16, thinkingConfig: { thinkingBudget: 0 }, responseMimeType: "application/json" };
  const call = (extra) => ai.models.generateContent({ model: MODEL, contents: "hi", config: { ...config, ...extra } });
  // JSON Schema keywords that llguidance cannot enforce.
  const unenforceable = {
    uniqueItems: { type: "array", items: { type: "string", enum: ["a", "b"] }, uniqueItems: true },
    not: { type: "string", not: { enum: ["a"] } },
  };
  for (const [keyword, responseJsonSchema] of Object.entries(unenforceable)) {
    await assertInvalid(call({ responseJsonSchema }), new RegExp(`response_json_schema|["'\`]${keyword}["'\`]`));
  }
  // required names a property that is not declared.
  await assertInvalid(
    call({ responseSchema: { type: Type.OBJECT, properties: { a: { type: Type.STRING } }, required: ["b"] } }),
    /response_schema/,
  );
  // A schema without a JSON (or enum) mime type.
  await assertInvalid(
    ai.models.generateContent({
      model: MODEL,
      contents: "hi",
      config: { maxOutputTokens: 16, responseSchema: { type: Type.STRING } },
    }),
    /response_mime_type|response_schema/,
  );
});

// ---------------------------------------------------------------------------
// Function calling
// ---------------------------------------------------------------------------

const WEATHER = {
  name: "get_weather",
  description: "Returns the current weather in a city.",
  parameters: {
    type: Type.OBJECT,
    properties: {
      city: { type: Type.STRING, enum: ["Paris", "Lyon"] },
      unit: { type: Type.STRING, enum: ["C", "F"] },
    },
    required: ["city"],
  },
};
const TIME = {
  name: "get_time",
  description: "Returns the local time in a city.",
  parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING, enum: ["Paris", "Lyon"] } }, required: ["city"] },
};
const ASK = "What's the weather like in Paris?";

const toolConfig = (mode, allowedFunctionNames) => ({ functionCallingConfig: { mode, allowedFunctionNames } });

/** A function call valid against one of `decls`. */
function assertCall(call, decls) {
  const decl = decls.find((d) => d.name === call.name);
  assert.ok(decl, `${call.name} is one of ${decls.map((d) => d.name)}`);
  validate(decl.parameters ?? decl.parametersJsonSchema, call.args ?? {}, `${call.name}.args`, { closed: true });
  if (call.id !== undefined) assert.equal(typeof call.id, "string", "functionCall.id is a string when present");
}

const callsOf = (response) => (response.candidates?.[0]?.content?.parts ?? []).filter((p) => p.functionCall).map((p) => p.functionCall);

/** A reply to a request with tools: role, parts that are text or calls, usage. */
function assertToolReply(response, { reasons, maxTokens }) {
  assert.equal(response.candidates?.length, 1);
  const cand = response.candidates[0];
  assert.ok(reasons.includes(cand.finishReason), `finishReason ${cand.finishReason} in ${reasons}`);
  if (cand.finishReason !== "MALFORMED_FUNCTION_CALL") {
    assert.equal(cand.content?.role, "model");
    assert.ok(cand.content.parts?.length > 0, "the reply has parts");
    for (const part of cand.content.parts) {
      const fields = ["text", "functionCall"].filter((k) => part[k] !== undefined);
      assert.equal(fields.length, 1, `a part is text or a functionCall: ${JSON.stringify(part)}`);
    }
  }
  const u = response.usageMetadata;
  assert.ok(u.promptTokenCount > 0);
  if (callsOf(response).length > 0) assert.ok(u.candidatesTokenCount > 0, "the call's tokens are counted");
  assert.ok((u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0) <= maxTokens);
  assert.equal(u.totalTokenCount, u.promptTokenCount + (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0));
}

/** Mode ANY over SEEDS at temperature 1: every reply calls one of `expect`, validly. */
async function assertForcedCalls({ contents = ASK, declarations, allowed, expect = declarations }) {
  const maxOutputTokens = await outputBudget(200);
  for (const seed of SEEDS) {
    const response = await ai.models.generateContent({
      model: MODEL,
      contents,
      config: {
        maxOutputTokens,
        seed,
        temperature: 1,
        thinkingConfig: { thinkingBudget: 0 },
        tools: [{ functionDeclarations: declarations }],
        toolConfig: toolConfig(FunctionCallingConfigMode.ANY, allowed),
      },
    });
    assertToolReply(response, { reasons: ["STOP"], maxTokens: maxOutputTokens });
    assert.ok(response.functionCalls?.length >= 1, "response.functionCalls is not empty");
    assert.deepEqual(response.functionCalls, callsOf(response));
    for (const call of response.functionCalls) assertCall(call, expect);
  }
}

test("mode ANY: a functionCall valid against its declaration, finishReason STOP", async () => {
  await assertForcedCalls({ declarations: [WEATHER] });
});

test("mode ANY with allowedFunctionNames: only an allowed function is called", async () => {
  await assertForcedCalls({
    contents: "What time is it in Lyon?",
    declarations: [WEATHER, TIME],
    allowed: ["get_time"],
    expect: [TIME],
  });
});

test("mode ANY with a parametersJsonSchema declaration", async () => {
  const decl = {
    name: "get_weather",
    description: "Returns the current weather in a city.",
    parametersJsonSchema: {
      type: "object",
      properties: { city: { type: "string", enum: ["Paris", "Lyon"] }, days: { type: "integer", minimum: 1, maximum: 3 } },
      required: ["city", "days"],
      additionalProperties: false,
    },
  };
  await assertForcedCalls({ declarations: [decl] });
});

test("mode NONE: no functionCall parts", async () => {
  const maxOutputTokens = await outputBudget(64);
  for (const seed of SEEDS) {
    const response = await ai.models.generateContent({
      model: MODEL,
      contents: ASK,
      config: {
        maxOutputTokens,
        seed,
        temperature: 1,
        thinkingConfig: { thinkingBudget: 0 },
        tools: [{ functionDeclarations: [WEATHER, TIME] }],
        toolConfig: toolConfig(FunctionCallingConfigMode.NONE),
      },
    });
    assertToolReply(response, { reasons: ["STOP", "MAX_TOKENS"], maxTokens: maxOutputTokens });
    assert.equal(response.functionCalls, undefined, "no function calls");
    assert.equal(typeof response.text, "string");
  }
});

test("mode AUTO (and no toolConfig): a well-formed reply, text or function calls", async () => {
  const maxOutputTokens = await outputBudget(64);
  for (const seed of SEEDS) {
    for (const tc of [toolConfig(FunctionCallingConfigMode.AUTO), undefined]) {
      const response = await ai.models.generateContent({
        model: MODEL,
        contents: ASK,
        config: {
          maxOutputTokens,
          seed,
          temperature: 1,
          thinkingConfig: { thinkingBudget: 0 },
          tools: [{ functionDeclarations: [WEATHER, TIME] }],
          toolConfig: tc,
        },
      });
      assertToolReply(response, { reasons: ["STOP", "MAX_TOKENS", "MALFORMED_FUNCTION_CALL"], maxTokens: maxOutputTokens });
      for (const call of callsOf(response)) {
        assert.ok(["get_weather", "get_time"].includes(call.name), `${call.name} is declared`);
        assert.equal(typeof call.args, "object");
      }
    }
  }
});

test("a model that thought signs its first functionCall part", async () => {
  const maxOutputTokens = await outputBudget(200);
  const response = await ai.models.generateContent({
    model: MODEL,
    contents: ASK,
    config: {
      maxOutputTokens,
      seed: 4,
      thinkingConfig: { thinkingBudget: 4 },
      tools: [{ functionDeclarations: [WEATHER] }],
      toolConfig: toolConfig(FunctionCallingConfigMode.ANY),
    },
  });
  assertToolReply(response, { reasons: ["STOP"], maxTokens: maxOutputTokens });
  const u = response.usageMetadata;
  assert.ok(u.thoughtsTokenCount > 0 && u.thoughtsTokenCount <= 4, `thoughtsTokenCount ${u.thoughtsTokenCount} in (0, 4]`);
  const parts = response.candidates[0].content.parts;
  assert.ok(!parts.some((p) => p.thought), "no thought parts without includeThoughts");
  const first = parts.find((p) => p.functionCall);
  assert.ok(first, "a functionCall part");
  assertCall(first.functionCall, [WEATHER]);
  assertSignature(parts[0], "the first part");
  assert.equal(parts[0], first, "the first part is the call (ANY writes nothing else)");
});

test("round trip: the call and a functionResponse go back (signature included); the model answers", async () => {
  const maxOutputTokens = await outputBudget(200);
  const tools = [{ functionDeclarations: [WEATHER] }];
  const first = await ai.models.generateContent({
    model: MODEL,
    contents: ASK,
    config: { maxOutputTokens, seed: 8, thinkingConfig: { thinkingBudget: 4 }, tools, toolConfig: toolConfig(FunctionCallingConfigMode.ANY) },
  });
  assertToolReply(first, { reasons: ["STOP"], maxTokens: maxOutputTokens });
  const [call] = first.functionCalls;
  assertCall(call, [WEATHER]);
  const modelTurn = first.candidates[0].content;
  assert.ok(modelTurn.parts.some((p) => p.thoughtSignature), "the model turn carries its signature back");
  const contents = [
    createUserContent(ASK),
    modelTurn,
    { role: "user", parts: [createPartFromFunctionResponse(call.id ?? "", call.name, { city: call.args.city, temperature: 21, unit: "C" })] },
  ];
  for (const mode of [FunctionCallingConfigMode.NONE, FunctionCallingConfigMode.AUTO]) {
    const reply = await ai.models.generateContent({
      model: MODEL,
      contents,
      config: { maxOutputTokens, seed: 8, thinkingConfig: { thinkingBudget: 0 }, tools, toolConfig: toolConfig(mode) },
    });
    const reasons = mode === FunctionCallingConfigMode.NONE ? ["STOP", "MAX_TOKENS"] : ["STOP", "MAX_TOKENS", "MALFORMED_FUNCTION_CALL"];
    assertToolReply(reply, { reasons, maxTokens: maxOutputTokens });
    if (mode === FunctionCallingConfigMode.NONE) assert.equal(reply.functionCalls, undefined);
    assert.ok(
      reply.usageMetadata.promptTokenCount > first.usageMetadata.promptTokenCount,
      "the call and its result reached the prompt",
    );
  }
});

test("streaming with mode ANY: the functionCall arrives whole in one chunk, as in the unary reply", async () => {
  const config = {
    maxOutputTokens: await outputBudget(200),
    temperature: 0,
    thinkingConfig: { thinkingBudget: 0 },
    tools: [{ functionDeclarations: [WEATHER] }],
    toolConfig: toolConfig(FunctionCallingConfigMode.ANY),
  };
  const unary = await ai.models.generateContent({ model: MODEL, contents: ASK, config });
  assert.ok(unary.functionCalls?.length >= 1);
  const chunks = [];
  for await (const c of await ai.models.generateContentStream({ model: MODEL, contents: ASK, config })) chunks.push(c);
  const streamed = [];
  for (const [i, chunk] of chunks.entries()) {
    const cand = chunk.candidates?.[0];
    assert.equal(cand?.content?.role, "model", `chunk ${i} has role model`);
    assert.ok(cand.content.parts?.length > 0, `chunk ${i} has parts`);
    for (const call of callsOf(chunk)) {
      assertCall(call, [WEATHER]); // complete: name and every required argument
      streamed.push(call);
    }
  }
  assert.equal(streamed.length, unary.functionCalls.length, "as many calls as in the unary reply");
  const strip = ({ id, ...rest }) => rest;
  assert.deepEqual(streamed.map(strip), unary.functionCalls.map(strip), "the same calls as the unary reply");
  assert.equal(chunks.at(-1).candidates[0].finishReason, "STOP");
});

test("function-calling requests Gemini refuses are a 400", async () => {
  const base = { maxOutputTokens: 16, thinkingConfig: { thinkingBudget: 0 } };
  const call = (config) => ai.models.generateContent({ model: MODEL, contents: ASK, config: { ...base, ...config } });
  const tools = [{ functionDeclarations: [WEATHER, TIME] }];
  // allowedFunctionNames is for mode ANY only.
  await assertInvalid(call({ tools, toolConfig: toolConfig(FunctionCallingConfigMode.AUTO, ["get_time"]) }), /allowed_function_names/);
  // allowedFunctionNames naming a function that is not declared.
  await assertInvalid(call({ tools, toolConfig: toolConfig(FunctionCallingConfigMode.ANY, ["get_news"]) }), /allowed_function_names/);
  // A function name with a space, or starting with a digit.
  for (const name of ["get weather", "1weather"]) {
    await assertInvalid(
      call({ tools: [{ functionDeclarations: [{ ...WEATHER, name }] }] }),
      /function_declarations\[0\]\.name/,
    );
  }
});
