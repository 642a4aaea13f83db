// Audio as input through the official JavaScript SDK (@google/genai 3.1.0),
// on the tiny tier (tests/sdk/run.sh): the guide's pattern (files.upload of
// a WAV and an MP3, then createPartFromUri) and inline audio, on the tiny
// Gemma 4 audio model (25 audio tokens a second); AUDIO in usage;
// countTokens equal to the prompt's usage; a streamed answer equal to the
// unary one at temperature 0; the documented 400s.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ApiError, GoogleGenAI, createPartFromBase64, createPartFromUri, createUserContent } from "@google/genai";

assert.ok(process.env.GOOGLE_GEMINI_BASE_URL, "GOOGLE_GEMINI_BASE_URL must point at a running hearth (see tests/sdk/run.sh)");
const ai = new GoogleGenAI({});
const AUDIO_MODEL = "gemma4a-f32";
const TEXT_MODEL = "gemini-2.5-flash";
const CLIP_TOKENS = 25; // the 1.0 s clip, at Gemma 4's 25 tokens a second
const clip = (name) => fileURLToPath(new URL(`../../testdata/audio/${name}`, import.meta.url));

function tokens(usage, modality) {
  return (usage.promptTokensDetails ?? []).find((d) => d.modality === modality)?.tokenCount ?? 0;
}

function errorOf(err) {
  assert.ok(err instanceof ApiError, `expected ApiError, got ${err?.name}: ${err?.message}`);
  return JSON.parse(err.message).error;
}

for (const name of ["gemma4a-test.wav", "gemma4a-test.mp3"]) {
  test(`audio: files.upload of ${name}, then createPartFromUri, and the same clip inline`, async () => {
    const file = await ai.files.upload({ file: clip(name) });
    assert.ok(file.mimeType.startsWith("audio/"), file.mimeType);
    const contents = [createUserContent([createPartFromUri(file.uri, file.mimeType), "What is said in this clip?"])];
    const config = { temperature: 0, maxOutputTokens: 8 };
    const response = await ai.models.generateContent({ model: AUDIO_MODEL, contents, config });
    assert.ok(["STOP", "MAX_TOKENS"].includes(response.candidates[0].finishReason));
    const usage = response.usageMetadata;
    assert.equal(tokens(usage, "AUDIO"), CLIP_TOKENS);
    assert.equal(tokens(usage, "TEXT") + CLIP_TOKENS, usage.promptTokenCount);
    const counted = await ai.models.countTokens({ model: AUDIO_MODEL, contents });
    assert.equal(counted.totalTokens, usage.promptTokenCount);
    const inline = [createUserContent([createPartFromBase64(readFileSync(clip(name)).toString("base64"), file.mimeType), "What is said in this clip?"])];
    let streamed = "";
    for await (const chunk of await ai.models.generateContentStream({ model: AUDIO_MODEL, contents: inline, config })) streamed += chunk.text ?? "";
    assert.equal(streamed, response.text ?? "");
    await ai.files.delete({ name: file.name });
  });
}

test("audio: bytes that are no audio, and audio for a text-only model, are 400s", async () => {
  const wav = readFileSync(clip("gemma4a-test.wav")).toString("base64");
  const cases = [
    [AUDIO_MODEL, createPartFromBase64(Buffer.from("not audio at all").toString("base64"), "audio/mp3"), /is not audio/],
    [TEXT_MODEL, createPartFromBase64(wav, "audio/wav"), /cannot read audio\/wav/],
  ];
  for (const [model, part, why] of cases) {
    await assert.rejects(
      ai.models.generateContent({ model, contents: [createUserContent([part, "What is said?"])] }),
      (err) => {
        const e = errorOf(err);
        assert.equal(e.code, 400);
        assert.match(e.message, why);
        return true;
      },
    );
  }
});

test("video: files.upload of an MP4, then createPartFromUri: frames as VIDEO, its track as AUDIO", async () => {
  const path = fileURLToPath(new URL("../../testdata/video/test-3s.mp4", import.meta.url));
  const file = await ai.files.upload({ file: path });
  assert.equal(file.mimeType, "video/mp4");
  const contents = [createUserContent([createPartFromUri(file.uri, file.mimeType), "What happens in this video?"])];
  const config = { temperature: 0, maxOutputTokens: 8 };
  const response = await ai.models.generateContent({ model: AUDIO_MODEL, contents, config });
  const usage = response.usageMetadata;
  const frames = tokens(usage, "VIDEO");
  assert.ok(frames > 0, JSON.stringify(usage));
  const audio = tokens(usage, "AUDIO");
  assert.ok(audio >= 73 && audio <= 77, JSON.stringify(usage));
  assert.equal(tokens(usage, "TEXT") + frames + audio, usage.promptTokenCount);
  const counted = await ai.models.countTokens({ model: AUDIO_MODEL, contents });
  assert.equal(counted.totalTokens, usage.promptTokenCount);
  const inline = [createUserContent([createPartFromBase64(readFileSync(path).toString("base64"), "video/mp4"), "What happens in this video?"])];
  let streamed = "";
  for await (const chunk of await ai.models.generateContentStream({ model: AUDIO_MODEL, contents: inline, config })) streamed += chunk.text ?? "";
  assert.equal(streamed, response.text ?? "");
  await ai.files.delete({ name: file.name });
});
