// PDFs as input through the official JavaScript SDK (@google/genai 3.1.0),
// on the tiny tier (tests/sdk/run.sh): the guide's pattern (files.upload,
// then createPartFromUri) and inline bytes, on the tiny vision model (each
// page's image reaches its projector) and the tiny text-only one (each
// page's text); DOCUMENT in usage and countTokens; the documented 400s.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ApiError, GoogleGenAI, createPartFromBase64, createPartFromUri, createUserContent } from "@google/genai";

assert.ok(process.env.GOOGLE_GEMINI_BASE_URL, "GOOGLE_GEMINI_BASE_URL must point at a running hearth (see tests/sdk/run.sh)");
const ai = new GoogleGenAI({});
const TEXT_MODEL = "gemini-2.5-flash";
const VISION = "gemma3v-f32";
const IMAGE_TOKENS = 4; // mm_tokens_per_image of the tiny projector
const doc = (name) => fileURLToPath(new URL(`../../testdata/documents/${name}`, import.meta.url));
const SAMPLE = doc("sample.pdf"); // 5 pages, one of them an image only
const PAGES = 5;

function tokens(usage, modality) {
  return (usage.promptTokensDetails ?? []).find((d) => d.modality === modality)?.tokenCount ?? 0;
}

function errorOf(err) {
  assert.ok(err instanceof ApiError, `expected ApiError, got ${err?.name}: ${err?.message}`);
  return JSON.parse(err.message).error;
}

test("documents: files.upload of a PDF, then createPartFromUri, on a vision and a text-only model", async () => {
  const file = await ai.files.upload({ file: SAMPLE });
  assert.equal(file.mimeType, "application/pdf");
  const contents = [createUserContent([createPartFromUri(file.uri, file.mimeType), "Summarize this report."])];
  const docTokens = {};
  for (const model of [VISION, TEXT_MODEL]) {
    const config = { temperature: 0, maxOutputTokens: 8 };
    const response = await ai.models.generateContent({ model, contents, config });
    assert.ok(["STOP", "MAX_TOKENS"].includes(response.candidates[0].finishReason));
    const usage = response.usageMetadata;
    assert.equal(tokens(usage, "IMAGE"), 0, "pages count as DOCUMENT");
    assert.equal(tokens(usage, "TEXT") + tokens(usage, "DOCUMENT"), usage.promptTokenCount);
    const counted = await ai.models.countTokens({ model, contents });
    assert.equal(counted.totalTokens, usage.promptTokenCount);
    // (@google/genai 3.1.0 keeps only totalTokens of a countTokens response.)
    docTokens[model] = tokens(usage, "DOCUMENT");
    // Streamed = unary at temperature 0, the same PDF sent inline.
    const inline = [createUserContent([createPartFromBase64(readFileSync(SAMPLE).toString("base64"), "application/pdf"), "Summarize this report."])];
    let streamed = "";
    for await (const chunk of await ai.models.generateContentStream({ model, contents: inline, config })) streamed += chunk.text ?? "";
    assert.equal(streamed, response.text ?? "");
  }
  // The vision model reads every page's image (4 positions each) beside its text.
  assert.ok(docTokens[VISION] >= PAGES * IMAGE_TOKENS + 100, JSON.stringify(docTokens));
  assert.ok(docTokens[TEXT_MODEL] >= 100, JSON.stringify(docTokens));
  await ai.files.delete({ name: file.name });
});

test("documents: an encrypted or empty PDF is a 400 that says why", async () => {
  for (const [name, why] of [["encrypted.pdf", /encrypted/], ["nopages.pdf", /no pages/]]) {
    const part = createPartFromBase64(readFileSync(doc(name)).toString("base64"), "application/pdf");
    await assert.rejects(
      ai.models.generateContent({ model: VISION, contents: [createUserContent([part, "Read it."])] }),
      (err) => {
        const e = errorOf(err);
        assert.equal(err.status, 400);
        assert.equal(e.status, "INVALID_ARGUMENT");
        assert.match(e.message, /contents\[0\]\.parts\[0\]\.inline_data/);
        assert.match(e.message, why);
        return true;
      },
    );
  }
});

test("documents: code and rich text are read as text; other document types are a 400 naming the type", async () => {
  const code = "def add(a, b):\n    return a + b\n";
  for (const mimeType of ["text/x-python", "application/x-javascript", "text/rtf"]) {
    const part = createPartFromBase64(Buffer.from(code).toString("base64"), mimeType);
    const asFile = await ai.models.countTokens({ model: TEXT_MODEL, contents: [createUserContent([part, "Explain."])] });
    const asText = await ai.models.countTokens({ model: TEXT_MODEL, contents: [createUserContent([code, "Explain."])] });
    assert.equal(asFile.totalTokens, asText.totalTokens, mimeType);
  }
  const word = createPartFromBase64(Buffer.from("PK\x03\x04").toString("base64"), "application/msword");
  await assert.rejects(
    ai.models.countTokens({ model: TEXT_MODEL, contents: [createUserContent([word, "Explain."])] }),
    (err) => {
      assert.equal(err.status, 400);
      assert.match(errorOf(err).message, /Unsupported MIME type: application\/msword/);
      return true;
    },
  );
});
