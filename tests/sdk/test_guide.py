"""SDK conformance: every example of the Gemini text-generation guide
(shared/seed/gemini-text-generation-guide.fr.txt), run through the official
Python SDK (google-genai 3.6.1) against a running hearth.

The SDK is pointed at hearth only through the environment, as an app would be:
  GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT GEMINI_API_KEY=anything pytest
(tests/sdk/run.sh starts hearth and sets both). Two tests also cover an explicit
http_options base_url and api_version="v1beta".

hearth serves a tiny random-weight model in CI: answers are gibberish, so the
assertions are about structure and meaning (roles, counts, history,
determinism at temperature 0), never about the text itself. The model thinks
(Qwen 3): unless thinking_budget is 0 every reply starts with a hidden thought,
capped at THINK_CAP tokens by run.sh; test_thinking_output_tools.py covers
thinking, structured output and function calling in depth.
"""

import base64
import os
import re

import pytest
from google import genai
from google.genai import errors, types

BASE_URL = os.environ.get("GOOGLE_GEMINI_BASE_URL")
API_KEY = os.environ.get("GEMINI_API_KEY")
if not BASE_URL or not API_KEY:
    pytest.exit(
        "GOOGLE_GEMINI_BASE_URL (a running hearth) and GEMINI_API_KEY (any value) "
        "must be set; see tests/sdk/run.sh",
        returncode=2,
    )

# The guide's model name; hearth maps every gemini-* name to the model it serves.
MODEL = "gemini-2.5-flash"
THINK_CAP = 16  # run.sh starts hearth with --max-thinking-tokens 16
# max_output_tokens for every generation: it covers the thought and the answer
# (as on Gemini), so room for a capped thought plus 8 answer tokens.
MAX = THINK_CAP + 8
SEED = 1234  # sampled generations are reproducible
# A valid 1x1 PNG, standing in for the guide's organ.png.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def history():
    return [
        types.Content(role="user", parts=[types.Part(text="Hello")]),
        types.Content(role="model", parts=[types.Part(text="Great to meet you. What would you like to know?")]),
    ]


def cfg(**kw):
    return types.GenerateContentConfig(max_output_tokens=MAX, seed=SEED, **kw)


@pytest.fixture(scope="module")
def client():
    # Exactly as the guide writes it: the environment does the rest. Kept in a
    # variable for the whole module (the sync client closes its pool when collected).
    return genai.Client()


@pytest.fixture(scope="module")
def served(client):
    return client.models.get(model=MODEL)


def text_of(content):
    return "".join(p.text or "" for p in content.parts)


def assert_reply(response, served, max_tokens=MAX, thinks=True):
    """A well-formed unary (or last streamed) reply: one model candidate, usage
    consistent. thinks: False when the request set thinking_budget 0."""
    assert response.candidates is not None and len(response.candidates) == 1
    cand = response.candidates[0]
    assert cand.content is not None and cand.content.role == "model"
    assert cand.content.parts, "the reply has parts"
    for part in cand.content.parts:
        assert isinstance(part.text, str), "text-only model answers text parts"
        assert not part.thought, "thought parts only with include_thoughts (the guide never asks for them)"
    assert cand.finish_reason in (types.FinishReason.STOP, types.FinishReason.MAX_TOKENS), cand.finish_reason
    assert isinstance(response.text, str)
    u = response.usage_metadata
    assert u is not None
    assert u.prompt_token_count > 0
    thoughts = u.thoughts_token_count or 0
    if thinks:
        assert 0 < thoughts <= THINK_CAP, f"the model thought, within the server's cap (thoughts_token_count {thoughts})"
    else:
        assert not u.thoughts_token_count, "no thought tokens with thinking_budget 0"
    assert u.candidates_token_count >= 1
    assert u.candidates_token_count + thoughts <= max_tokens
    if cand.finish_reason == types.FinishReason.MAX_TOKENS:
        assert u.candidates_token_count + thoughts == max_tokens
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count + thoughts
    assert f"models/{response.model_version}" == served.name, "modelVersion names the local model"
    assert response.response_id


def test_generate_content_text_prompt(client, served):
    """Guide: generateContent with a text prompt (env base URL, default API version v1)."""
    response = client.models.generate_content(model=MODEL, contents="How does AI work?", config=cfg())
    assert_reply(response, served)
    assert response.text


def test_thinking_budget_zero(client, served):
    """Guide: thinking_budget 0 succeeds and reports no thought tokens."""
    response = client.models.generate_content(
        model=MODEL,
        contents="How does AI work?",
        config=cfg(thinking_config=types.ThinkingConfig(thinking_budget=0)),
    )
    assert_reply(response, served, thinks=False)
    assert not response.usage_metadata.thoughts_token_count
    assert not any(p.thought for p in response.candidates[0].content.parts)


@pytest.mark.parametrize(
    "thinking",
    [
        types.ThinkingConfig(thinking_budget=-2),
        types.ThinkingConfig(thinking_budget=1024, thinking_level=types.ThinkingLevel.LOW),
    ],
    ids=["budget-below-minus-one", "budget-and-level"],
)
def test_invalid_thinking_config_is_400(client, thinking):
    """An invalid thinking_config is refused with 400 (budget below -1; budget and level together)."""
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model=MODEL, contents="How does AI work?", config=cfg(thinking_config=thinking))
    assert exc.value.code == 400
    assert exc.value.status == "INVALID_ARGUMENT"
    assert "thinking" in exc.value.message


def test_system_instruction_and_count_tokens(client, served):
    """Guide: system_instruction reaches the prompt; count_tokens agrees with usage."""
    contents = "Hello there"
    plain = client.models.generate_content(model=MODEL, contents=contents, config=cfg())
    assert_reply(plain, served)
    with_system = client.models.generate_content(
        model=MODEL, contents=contents, config=cfg(system_instruction="You are a cat. Your name is Neko.")
    )
    assert_reply(with_system, served)
    assert with_system.usage_metadata.prompt_token_count > plain.usage_metadata.prompt_token_count
    # The Developer API's countTokens takes contents only (the SDK refuses a
    # system_instruction there); for the same contents it must match the usage.
    counted = client.models.count_tokens(model=MODEL, contents=contents)
    assert counted.total_tokens == plain.usage_metadata.prompt_token_count


def test_temperature(client, served):
    """Guide: temperature 0.1 is honoured."""
    response = client.models.generate_content(model=MODEL, contents="Explain how AI works", config=cfg(temperature=0.1))
    assert_reply(response, served)


def test_stream_equals_unary_at_temperature_zero(client, served):
    """Guide: generate_content_stream; at temperature 0 the chunks add up to the unary answer."""
    config = types.GenerateContentConfig(temperature=0, max_output_tokens=MAX)
    unary = client.models.generate_content(model=MODEL, contents=["Explain how AI works"], config=config)
    assert_reply(unary, served)
    again = client.models.generate_content(model=MODEL, contents=["Explain how AI works"], config=config)
    assert again.text == unary.text, "temperature 0 is deterministic"

    chunks = list(client.models.generate_content_stream(model=MODEL, contents=["Explain how AI works"], config=config))
    assert chunks
    for i, chunk in enumerate(chunks):
        cand = chunk.candidates[0]
        assert cand.content.role == "model", i
        assert cand.content.parts, i
        assert isinstance(chunk.text, str), i
        assert chunk.response_id == chunks[0].response_id, "one responseId for the whole stream"
        if i < len(chunks) - 1:
            assert cand.finish_reason is None, f"only the last chunk finishes (chunk {i})"
    last = chunks[-1]
    assert_reply(last, served)
    assert last.candidates[0].finish_reason == unary.candidates[0].finish_reason
    assert "".join(c.text for c in chunks) == unary.text, "streamed text == unary text"
    assert last.usage_metadata.prompt_token_count == unary.usage_metadata.prompt_token_count
    assert last.usage_metadata.candidates_token_count == unary.usage_metadata.candidates_token_count
    assert last.usage_metadata.thoughts_token_count == unary.usage_metadata.thoughts_token_count, "the same hidden thought"


def test_chat_send_message_twice(client, served):
    """Guide: chat with history, two send_message calls; curated history is in order."""
    chat = client.chats.create(model=MODEL, history=history(), config=cfg())
    response1 = chat.send_message("I have 2 dogs in my house.")
    assert_reply(response1, served)
    response2 = chat.send_message("How many paws are in my house?")
    assert_reply(response2, served)

    curated = chat.get_history(curated=True)
    assert [c.role for c in curated] == ["user", "model", "user", "model", "user", "model"]
    assert text_of(curated[0]) == "Hello"
    assert text_of(curated[1]) == "Great to meet you. What would you like to know?"
    assert text_of(curated[2]) == "I have 2 dogs in my house."
    assert curated[3] == response1.candidates[0].content, "reply 1 recorded as received"
    assert text_of(curated[4]) == "How many paws are in my house?"
    assert curated[5] == response2.candidates[0].content, "reply 2 recorded as received"
    assert [c.role for c in chat.get_history()] == [c.role for c in curated], "nothing dropped"
    # The second request carried the whole conversation, reply 1 included.
    assert response2.usage_metadata.prompt_token_count > response1.usage_metadata.prompt_token_count


def test_chat_stream_history(client, served):
    """Guide: streamed chat keeps every streamed chunk in history and can continue."""
    chat = client.chats.create(model=MODEL, history=history(), config=cfg())
    chunks1 = list(chat.send_message_stream("I have 2 dogs in my house."))
    assert chunks1
    assert chunks1[-1].candidates[0].finish_reason is not None

    # sdk-wire §7: one model history entry per streamed chunk, as received.
    curated = chat.get_history(curated=True)
    assert [c.role for c in curated] == ["user", "model", "user"] + ["model"] * len(chunks1), (
        "the streamed turn is kept (not dropped as invalid)"
    )
    assert text_of(curated[2]) == "I have 2 dogs in my house."
    for i, chunk in enumerate(chunks1):
        assert curated[3 + i] == chunk.candidates[0].content

    # The next request carries several consecutive model turns; hearth must accept them.
    chunks2 = list(chat.send_message_stream("How many paws are in my house?"))
    assert chunks2
    assert_reply(chunks2[-1], served)
    assert chunks2[-1].usage_metadata.prompt_token_count > chunks1[-1].usage_metadata.prompt_token_count
    curated = chat.get_history(curated=True)
    assert [c.role for c in curated] == (
        ["user", "model", "user"] + ["model"] * len(chunks1) + ["user"] + ["model"] * len(chunks2)
    )
    assert text_of(curated[3 + len(chunks1)]) == "How many paws are in my house?"


def test_inline_image_is_400_for_text_only_model(client):
    """Guide: an image for a text-only model is refused with the documented 400."""
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(
            model=MODEL,
            contents=[types.Part.from_bytes(data=PNG_1X1, mime_type="image/png"), "Tell me about this instrument"],
            config=types.GenerateContentConfig(max_output_tokens=MAX),
        )
    assert exc.value.code == 400
    assert exc.value.status == "INVALID_ARGUMENT"
    assert "cannot read image/png" in exc.value.message


# The tiny Gemma 3 vision model (run.sh loads it with its projector), and two
# 64x64 test images standing in for the guide's organ.png.
VISION = "gemma3v-f32"
IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "images")
IMAGE = os.path.join(IMAGES, "gemma3v-test.png")
IMAGE2 = os.path.join(IMAGES, "gemma3v-test2.png")
IMAGE_TOKENS = 4  # mm_tokens_per_image of the tiny projector


def test_uploaded_image_by_uri_is_read_by_a_vision_model(client):
    """Guide: upload an image, then refer to it by URI (with the vision model's name)."""
    image = client.files.upload(file=IMAGE)
    assert image.mime_type == "image/png"
    config = types.GenerateContentConfig(temperature=0, max_output_tokens=8, response_logprobs=True)
    contents = ["Tell me about this instrument", image]
    response = client.models.generate_content(model=VISION, contents=contents, config=config)
    cand = response.candidates[0]
    assert cand.finish_reason in (types.FinishReason.STOP, types.FinishReason.MAX_TOKENS)
    usage = response.usage_metadata
    by_modality = {d.modality: d.token_count for d in usage.prompt_tokens_details}
    assert by_modality[types.MediaModality.IMAGE] == IMAGE_TOKENS
    assert by_modality[types.MediaModality.TEXT] + IMAGE_TOKENS == usage.prompt_token_count
    counted = client.models.count_tokens(model=VISION, contents=contents)
    assert counted.total_tokens == usage.prompt_token_count
    # Streamed = unary at temperature 0, the same image sent inline this time.
    with open(IMAGE, "rb") as f:
        inline = types.Part.from_bytes(data=f.read(), mime_type="image/png")
    streamed = "".join(
        c.text or ""
        for c in client.models.generate_content_stream(
            model=VISION, contents=["Tell me about this instrument", inline], config=config
        )
    )
    assert streamed == (response.text or "")
    # The model reads the pixels: another image, another first-token distribution.
    with open(IMAGE2, "rb") as f:
        other_part = types.Part.from_bytes(data=f.read(), mime_type="image/png")
    other = client.models.generate_content(
        model=VISION, contents=["Tell me about this instrument", other_part], config=config
    )

    def first(r):
        return r.candidates[0].logprobs_result.chosen_candidates[0].log_probability

    assert first(other) != first(response)
    # A format the projector cannot decode is a 400 naming the type.
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(
            model=VISION,
            contents=["Tell me about this instrument", types.Part.from_bytes(data=PNG_1X1, mime_type="image/webp")],
            config=config,
        )
    assert exc.value.code == 400
    assert "cannot read image/webp" in exc.value.message


def test_count_tokens_matches_usage(client, served):
    """count_tokens matches the prompt usage of generate_content, for one and several turns."""
    single = "The quick brown fox jumps over the lazy dog."
    turns = [
        types.Content(role="user", parts=[types.Part(text="Hello")]),
        types.Content(role="model", parts=[types.Part(text="Hi! How can I help?")]),
        types.Content(role="user", parts=[types.Part(text="Tell me a joke.")]),
    ]
    for contents in (single, turns):
        counted = client.models.count_tokens(model=MODEL, contents=contents)
        assert isinstance(counted.total_tokens, int) and counted.total_tokens > 0
        # A thought of at most THINK_CAP tokens, then at least one answer token.
        response = client.models.generate_content(
            model=MODEL, contents=contents, config=types.GenerateContentConfig(max_output_tokens=THINK_CAP + 8, seed=SEED)
        )
        assert_reply(response, served, max_tokens=THINK_CAP + 8)
        assert counted.total_tokens == response.usage_metadata.prompt_token_count
    one = client.models.count_tokens(model=MODEL, contents="Hello")
    many = client.models.count_tokens(model=MODEL, contents=turns)
    assert many.total_tokens > one.total_tokens


def test_models_list_and_get(client):
    """models.list and models.get describe the served model."""
    models = list(client.models.list())
    assert models
    for m in models:
        assert re.match(r"^models/.", m.name)
        assert m.input_token_limit > 0 and m.output_token_limit > 0
        for action in ("generateContent", "streamGenerateContent", "countTokens"):
            assert action in m.supported_actions, (m.name, action)
    via_alias = client.models.get(model=MODEL)
    assert via_alias.name in [m.name for m in models]
    direct = client.models.get(model=via_alias.name)
    assert (direct.name, direct.display_name, direct.input_token_limit) == (
        via_alias.name,
        via_alias.display_name,
        via_alias.input_token_limit,
    )
    # Paging with a small page size still lists every model once.
    paged = [m.name for m in client.models.list(config=types.ListModelsConfig(page_size=1))]
    assert paged == [m.name for m in models]


@pytest.mark.parametrize("call", ["generate_content", "get"])
def test_unknown_model_is_404(client, call):
    """An unknown model is a 404 NOT_FOUND ClientError."""
    with pytest.raises(errors.ClientError) as exc:
        if call == "generate_content":
            client.models.generate_content(model="no-such-model", contents="hi")
        else:
            client.models.get(model="no-such-model")
    assert exc.value.code == 404
    assert exc.value.status == "NOT_FOUND"
    assert "models/no-such-model" in exc.value.message
    assert re.search(r"API version v1\b", exc.value.message), "the SDK's default API version is v1"


def test_explicit_http_options_base_url(monkeypatch, served):
    """An explicit http_options base_url wins over the environment."""
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    explicit = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=BASE_URL))
    response = explicit.models.generate_content(model=MODEL, contents="How does AI work?", config=cfg())
    assert_reply(response, served)


def test_api_version_v1beta(served):
    """http_options api_version v1beta reaches /v1beta."""
    beta = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=BASE_URL, api_version="v1beta"))
    assert_reply(beta.models.generate_content(model=MODEL, contents="How does AI work?", config=cfg()), served)
    chunks = list(beta.models.generate_content_stream(model=MODEL, contents="Explain how AI works", config=cfg()))
    assert_reply(chunks[-1], served)
    assert beta.models.count_tokens(model=MODEL, contents="How does AI work?").total_tokens > 0
    # The error message names the API version the request came in on.
    with pytest.raises(errors.ClientError) as exc:
        beta.models.get(model="no-such-model")
    assert exc.value.code == 404
    assert "API version v1beta" in exc.value.message
