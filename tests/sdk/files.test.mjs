// SDK conformance: the Files API through the official JavaScript SDK
// (@google/genai 3.1.0) against a running hearth: upload (a real PNG and a
// text file), get, list, the text file's uri in generateContent, delete; a
// ~20 MB upload in 8 MiB chunks; the documented 400s.
//
// Pointed at hearth through the environment (tests/sdk/run.sh sets
// GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY and gives hearth a fresh --files-dir).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiError, GoogleGenAI, createPartFromUri, createUserContent } from "@google/genai";

assert.ok(process.env.GOOGLE_GEMINI_BASE_URL, "GOOGLE_GEMINI_BASE_URL must point at a running hearth (see tests/sdk/run.sh)");
assert.ok(process.env.GEMINI_API_KEY, "GEMINI_API_KEY must be set (any value)");

const MODEL = "gemini-2.5-flash";
const MAX = 8;
// A valid 1x1 PNG, standing in for the guide's organ.png.
const PNG_1X1 = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
  "base64",
);
const NOTES = "The pipe organ is a keyboard instrument. Its pipes are grouped in ranks.";

const ai = new GoogleGenAI({});
const dir = mkdtempSync(join(tmpdir(), "hearth-sdk-files-"));

function sha256Hash(bytes) {
  // Google's sha256Hash: base64 of the lowercase hex digest.
  return Buffer.from(createHash("sha256").update(bytes).digest("hex")).toString("base64");
}

function errorOf(err) {
  assert.ok(err instanceof ApiError, `expected ApiError, got ${err?.name}: ${err?.message}`);
  return JSON.parse(err.message).error;
}

function assertFile(file, { mimeType, bytes, displayName }) {
  assert.match(file.name, /^files\/[a-z0-9]+$/);
  assert.equal(file.mimeType, mimeType);
  assert.equal(String(file.sizeBytes), String(bytes.length));
  assert.equal(file.sha256Hash, sha256Hash(bytes));
  assert.equal(file.state, "ACTIVE");
  assert.equal(file.source, "UPLOADED");
  assert.equal(file.displayName, displayName);
  assert.ok(file.uri.endsWith(`/${file.name}`), file.uri);
  const created = Date.parse(file.createTime);
  const hours = (Date.parse(file.expirationTime) - created) / 3600e3;
  assert.ok(Math.abs(hours - 48) < 0.01, `expires 48 h after creation, not ${hours}`);
}

test("files: upload a PNG and a text file, get, list, generate with the text file, delete", async () => {
  const pngPath = join(dir, "organ.png");
  const txtPath = join(dir, "notes.txt");
  writeFileSync(pngPath, PNG_1X1);
  writeFileSync(txtPath, NOTES);
  const pic = await ai.files.upload({ file: pngPath, config: { displayName: "organ picture" } });
  assertFile(pic, { mimeType: "image/png", bytes: PNG_1X1, displayName: "organ picture" });
  const notes = await ai.files.upload({ file: txtPath, config: { mimeType: "text/plain" } });
  assertFile(notes, { mimeType: "text/plain", bytes: Buffer.from(NOTES), displayName: undefined });

  const got = await ai.files.get({ name: pic.name });
  assert.deepEqual(got, pic);

  // pageSize 1: the pager follows nextPageToken through every file.
  const listed = [];
  for await (const f of await ai.files.list({ config: { pageSize: 1 } })) listed.push(f.name);
  assert.ok(listed.includes(pic.name) && listed.includes(notes.name), listed.join(","));

  // The text file's uri in generateContent: its text is the prompt, as if inline.
  const fromFile = createUserContent([createPartFromUri(notes.uri, notes.mimeType), "Summarize."]);
  const response = await ai.models.generateContent({ model: MODEL, contents: fromFile, config: { maxOutputTokens: MAX } });
  assert.equal(response.candidates[0].content.role, "model");
  assert.ok(["STOP", "MAX_TOKENS"].includes(response.candidates[0].finishReason));
  const counted = await ai.models.countTokens({ model: MODEL, contents: fromFile });
  const inline = await ai.models.countTokens({ model: MODEL, contents: createUserContent([NOTES, "Summarize."]) });
  assert.equal(counted.totalTokens, inline.totalTokens, "the file's text reached the prompt");

  // The PNG: the documented 400 of a text-only model.
  await assert.rejects(
    ai.models.generateContent({
      model: MODEL,
      contents: createUserContent(["Tell me about this instrument", createPartFromUri(pic.uri, pic.mimeType)]),
      config: { maxOutputTokens: MAX },
    }),
    (err) => {
      const e = errorOf(err);
      assert.equal(err.status, 400);
      assert.equal(e.status, "INVALID_ARGUMENT");
      assert.match(e.message, /cannot read image\/png/);
      return true;
    },
  );

  for (const f of [pic, notes]) {
    await ai.files.delete({ name: f.name });
    await assert.rejects(ai.files.get({ name: f.name }), (err) => {
      const e = errorOf(err);
      assert.equal(err.status, 403);
      assert.equal(e.status, "PERMISSION_DENIED");
      assert.match(e.message, /or it may not exist/);
      return true;
    });
  }
});

test("files: a ~20 MB upload goes up in 8 MiB chunks and comes back whole", async () => {
  const big = Buffer.alloc(20 * 1000 * 1000);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const blob = new Blob([big], { type: "application/octet-stream" });
  const file = await ai.files.upload({ file: blob, config: { displayName: "big" } });
  assertFile(file, { mimeType: "application/octet-stream", bytes: big, displayName: "big" });
  await ai.files.delete({ name: file.name });
});

test("files: bytes that are not the declared image type are refused with a 400", async () => {
  const fake = join(dir, "fake.png");
  writeFileSync(fake, "this is not a picture");
  await assert.rejects(ai.files.upload({ file: fake }), (err) => {
    const e = errorOf(err);
    assert.equal(err.status, 400);
    assert.match(e.message, /not image\/png content/);
    return true;
  });
});

test("files: an unknown file in generateContent is Google's 403", async () => {
  const base = process.env.GOOGLE_GEMINI_BASE_URL.replace(/\/$/, "");
  await assert.rejects(
    ai.models.generateContent({
      model: MODEL,
      contents: createUserContent([createPartFromUri(`${base}/v1beta/files/nosuchfile`, "text/plain"), "Hi"]),
    }),
    (err) => {
      assert.equal(err.status, 403);
      assert.match(errorOf(err).message, /access the File nosuchfile or it may not exist/);
      return true;
    },
  );
});
