"""Audio and video as input through the official Python SDK (google-genai 3.6.1), on
the tiny tier (tests/sdk/run.sh): the guide's pattern (files.upload of a WAV
and an MP3, then Part.from_uri) and inline audio, on the tiny Gemma 4 audio
model (25 audio tokens a second); AUDIO in usage; countTokens equal to the
prompt's usage; a streamed answer equal to the unary one; the 400s.
"""

import os
import pathlib

import pytest
from google import genai
from google.genai import errors, types

if not os.environ.get("GOOGLE_GEMINI_BASE_URL"):
    pytest.exit("GOOGLE_GEMINI_BASE_URL must point at a running hearth (see tests/sdk/run.sh)", returncode=2)

AUDIO_MODEL = "gemma4a-f32"
TEXT_MODEL = "gemini-2.5-flash"
AUDIO = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "audio"
CLIP_TOKENS = 25  # the 1.0 s clip, at Gemma 4's 25 tokens a second


@pytest.fixture(scope="module")
def client():
    return genai.Client()


def tokens(usage, modality):
    return sum(d.token_count for d in usage.prompt_tokens_details or [] if d.modality.value == modality)


@pytest.mark.parametrize("name,mime", [("gemma4a-test.wav", "audio/"), ("gemma4a-test.mp3", "audio/")])
def test_uploaded_audio_by_uri_and_inline(client, name, mime):
    path = AUDIO / name
    file = client.files.upload(file=path)
    assert file.mime_type.startswith(mime), file.mime_type
    contents = [types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type), "What is said in this clip?"]
    config = types.GenerateContentConfig(temperature=0, max_output_tokens=8)
    response = client.models.generate_content(model=AUDIO_MODEL, contents=contents, config=config)
    assert response.candidates[0].finish_reason in (types.FinishReason.STOP, types.FinishReason.MAX_TOKENS)
    usage = response.usage_metadata
    assert tokens(usage, "AUDIO") == CLIP_TOKENS
    assert tokens(usage, "TEXT") + CLIP_TOKENS == usage.prompt_token_count
    counted = client.models.count_tokens(model=AUDIO_MODEL, contents=contents)
    assert counted.total_tokens == usage.prompt_token_count
    # Streamed = unary at temperature 0, the same clip sent inline.
    inline = [types.Part.from_bytes(data=path.read_bytes(), mime_type=file.mime_type), "What is said in this clip?"]
    streamed = "".join(
        c.text or "" for c in client.models.generate_content_stream(model=AUDIO_MODEL, contents=inline, config=config)
    )
    assert streamed == (response.text or "")
    client.files.delete(name=file.name)


def test_the_model_hears_the_clip(client):
    """Another clip, another first-token distribution; 0.6 s is 15 tokens."""
    config = types.GenerateContentConfig(
        temperature=0,
        max_output_tokens=1,
        response_logprobs=True,
        thinking_config=types.ThinkingConfig(thinking_budget=0),
    )

    def ask(name):
        part = types.Part.from_bytes(data=(AUDIO / name).read_bytes(), mime_type="audio/wav")
        return client.models.generate_content(model=AUDIO_MODEL, contents=[part, "What is said?"], config=config)

    a, b = ask("gemma4a-test.wav"), ask("gemma4a-test2.wav")
    assert tokens(b.usage_metadata, "AUDIO") == 15
    first = lambda r: r.candidates[0].logprobs_result.chosen_candidates[0].log_probability  # noqa: E731
    assert first(a) != first(b)


def test_audio_that_cannot_be_read_is_a_400(client):
    wav = (AUDIO / "gemma4a-test.wav").read_bytes()
    cases = [
        (AUDIO_MODEL, types.Part.from_bytes(data=b"not audio at all", mime_type="audio/mp3"), "is not audio"),
        (TEXT_MODEL, types.Part.from_bytes(data=wav, mime_type="audio/wav"), "cannot read audio/wav"),
    ]
    for model, part, why in cases:
        with pytest.raises(errors.ClientError) as e:
            client.models.generate_content(model=model, contents=[part, "What is said?"])
        assert e.value.code == 400
        assert why in e.value.message, e.value.message


VIDEO = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "video" / "test-3s.mp4"


def test_uploaded_video_by_uri_and_inline(client):
    """The guide's pattern with an MP4: its frames (VIDEO) and its audio track (AUDIO)."""
    file = client.files.upload(file=VIDEO)
    assert file.mime_type == "video/mp4"
    part = types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type)
    contents = [part, "What happens in this video?"]
    config = types.GenerateContentConfig(temperature=0, max_output_tokens=8)
    response = client.models.generate_content(model=AUDIO_MODEL, contents=contents, config=config)
    usage = response.usage_metadata
    frames = tokens(usage, "VIDEO")
    assert frames > 0 and 73 <= tokens(usage, "AUDIO") <= 77, usage
    assert tokens(usage, "TEXT") + frames + tokens(usage, "AUDIO") == usage.prompt_token_count
    counted = client.models.count_tokens(model=AUDIO_MODEL, contents=contents)
    assert counted.total_tokens == usage.prompt_token_count
    # Two frames a second: twice the frames.
    faster = types.Part(file_data=part.file_data, video_metadata=types.VideoMetadata(fps=2))
    doubled = client.models.generate_content(model=AUDIO_MODEL, contents=[faster, "What happens?"], config=config)
    assert tokens(doubled.usage_metadata, "VIDEO") == 2 * frames
    # Streamed = unary at temperature 0, the same video sent inline.
    inline = [types.Part.from_bytes(data=VIDEO.read_bytes(), mime_type="video/mp4"), "What happens in this video?"]
    streamed = "".join(
        c.text or "" for c in client.models.generate_content_stream(model=AUDIO_MODEL, contents=inline, config=config)
    )
    assert streamed == (response.text or "")
    client.files.delete(name=file.name)
