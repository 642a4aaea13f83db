"""SDK conformance: thinking, structured output and function calling through the
official Python SDK (google-genai 3.6.1) against a running hearth.

Set up like test_guide.py (tests/sdk/run.sh starts hearth and points the SDK at
it through GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY). hearth serves a tiny
random-weight Qwen 3 whose vocabulary has <think> </think> <tool_call> </tool_call>:
its text is gibberish, so the assertions are about structure and meaning (which
parts, in which order, token counts, schemas obeyed, calls valid against their
declarations), never about the words.

Budgets: run.sh caps every thought at 16 tokens (--max-thinking-tokens 16), and
max_output_tokens covers thought and answer together, as on Gemini. The schemas
keep every output bounded (enums, max_length, integer ranges, max_items), so
even a random model completes them within max_output_tokens.
"""

import enum
import json
import os
import re
from typing import Annotated, Literal, Optional

import pydantic
import pytest
from google import genai
from google.genai import errors, types

if not os.environ.get("GOOGLE_GEMINI_BASE_URL") or not os.environ.get("GEMINI_API_KEY"):
    pytest.exit(
        "GOOGLE_GEMINI_BASE_URL (a running hearth) and GEMINI_API_KEY (any value) "
        "must be set; see tests/sdk/run.sh",
        returncode=2,
    )

MODEL = "gemini-2.5-flash"
THINK_CAP = 16  # run.sh: --max-thinking-tokens 16 (dynamic thinking included)
SEEDS = [1, 2, 3]  # sampled runs at temperature 1
THOUGHT_MAX = 40  # max_output_tokens of the thinking tests: a capped thought + an answer
BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


@pytest.fixture(scope="module")
def client():
    # Kept for the whole module (the sync client closes its pool when collected).
    return genai.Client()


@pytest.fixture(scope="module")
def served(client):
    return client.models.get(model=MODEL)


def output_budget(served, wanted):
    """max_output_tokens for constrained output and calls. The test vocabulary is
    almost one character per token, so a JSON object or a call takes 40-80
    tokens: hearth must allow that much (run.sh's --max-output-tokens)."""
    limit = served.output_token_limit
    assert limit >= wanted, (
        f"hearth's output_token_limit is {limit}: start it with --max-output-tokens >= {wanted} (tests/sdk/run.sh)"
    )
    return wanted


def assert_invalid(exc, pattern):
    assert exc.value.code == 400
    assert exc.value.status == "INVALID_ARGUMENT"
    assert re.search(pattern, exc.value.message), exc.value.message


def assert_signature(part, what):
    sig = part.thought_signature
    # The SDK decodes the base64 of the wire into bytes (and encodes it back).
    assert isinstance(sig, bytes) and sig, f"{what} carries a thought_signature"


# ---------------------------------------------------------------------------
# A small validator for the schema subset used here: Gemini Schema (upper-case
# types, nullable, property_ordering) and plain JSON Schema (lower-case types,
# type lists, additionalProperties). Fails with the path of the first problem.
# closed: objects take no undeclared keys (hearth closes Gemini Schema objects).
# ---------------------------------------------------------------------------


def is_type(t, v):
    if t == "string":
        return isinstance(v, str)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    if t == "null":
        return v is None
    raise ValueError(f"validator: unknown type {t}")


def type_names(schema):
    t = schema.get("type", [])
    return [x.lower() for x in (t if isinstance(t, list) else [t])]


def validate(schema, value, path="$", closed=False):
    if value is None:
        null_ok = (
            schema.get("nullable") is True
            or "null" in type_names(schema)
            or None in schema.get("enum", [])
            or any(a.get("nullable") is True or "null" in type_names(a) for a in schema.get("anyOf", []))
        )
        assert null_ok, f"{path}: null is not allowed here"
        return
    if "anyOf" in schema:
        fits = 0
        for alt in schema["anyOf"]:
            try:
                validate(alt, value, path, closed)
                fits += 1
            except AssertionError:
                pass
        assert fits, f"{path}: {value!r} matches none of anyOf"
    types_ = type_names(schema)
    if types_:
        assert any(is_type(t, value) for t in types_), f"{path}: {value!r} is not of type {types_}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, str):
        if "minLength" in schema:
            assert len(value) >= int(schema["minLength"]), f"{path}: {value!r} shorter than {schema['minLength']}"
        if "maxLength" in schema:
            assert len(value) <= int(schema["maxLength"]), f"{path}: {value!r} longer than {schema['maxLength']}"
    if is_type("number", value):
        if "minimum" in schema:
            assert value >= schema["minimum"], f"{path}: {value} < minimum {schema['minimum']}"
        if "maximum" in schema:
            assert value <= schema["maximum"], f"{path}: {value} > maximum {schema['maximum']}"
    if isinstance(value, list):
        if "minItems" in schema:
            assert len(value) >= int(schema["minItems"]), f"{path}: fewer than {schema['minItems']} items"
        if "maxItems" in schema:
            assert len(value) <= int(schema["maxItems"]), f"{path}: more than {schema['maxItems']} items"
        for i, v in enumerate(value):
            if "items" in schema:
                validate(schema["items"], v, f"{path}[{i}]", closed)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        keys = list(value)
        for name in schema.get("required", []):
            assert name in value, f"{path}: required {name} missing in {value!r}"
        if closed or schema.get("additionalProperties") is False:
            for k in keys:
                assert k in props, f"{path}: undeclared key {k} in {value!r}"
        for k in keys:
            if k in props:
                validate(props[k], value[k], f"{path}.{k}", closed)
        order = schema.get("propertyOrdering")
        if order:
            assert keys == [k for k in order if k in value], f"{path}: keys {keys} follow propertyOrdering {order}"


def parse_json(text, seed):
    try:
        return json.loads(text)
    except (TypeError, ValueError) as e:
        pytest.fail(f"seed {seed}: response.text is not JSON ({e}): {text!r}")


# ---------------------------------------------------------------------------
# Thinking
# ---------------------------------------------------------------------------


def thinking_cfg(budget=None, include=None, **kw):
    kw.setdefault("max_output_tokens", THOUGHT_MAX)
    tc = None
    if budget is not None or include is not None:
        tc = types.ThinkingConfig(thinking_budget=budget, include_thoughts=include)
    return types.GenerateContentConfig(thinking_config=tc, **kw)


def assert_thinking(response, budget, include_thoughts, max_tokens=THOUGHT_MAX):
    """A reply of the thinking model. budget: 0 (thinking off) or the most thought
    tokens allowed. Returns (thought text, answer text)."""
    assert response.candidates is not None and len(response.candidates) == 1
    cand = response.candidates[0]
    assert cand.content is not None and cand.content.role == "model"
    assert cand.finish_reason in (types.FinishReason.STOP, types.FinishReason.MAX_TOKENS), cand.finish_reason
    parts = cand.content.parts or []
    assert parts, "the reply has parts"
    thought, answer, answered = "", "", False
    for i, part in enumerate(parts):
        assert isinstance(part.text, str), f"part {i} is text"
        if part.thought:
            assert include_thoughts and budget > 0, f"part {i}: thought parts only with include_thoughts and a budget"
            assert not answered, f"part {i}: thought parts come before the answer"
            thought += part.text
        else:
            assert part.thought is None, f"part {i}: answer parts carry no thought flag"
            answered = True
            answer += part.text
    if include_thoughts and budget > 0:
        assert parts[0].thought is True, "the reply starts with a thought part"
        assert thought, "the thought has text"
    assert not re.search(r"</?think>", answer), f"no thinking markup in the answer: {answer!r}"
    assert (response.text or "") == answer, "response.text is the answer without the thought"

    u = response.usage_metadata
    assert u is not None
    thoughts = u.thoughts_token_count or 0
    if budget == 0:
        assert not u.thoughts_token_count, f"thinking off: no thoughts_token_count (got {u.thoughts_token_count})"
        assert not any(p.thought_signature for p in parts), "thinking off: no thought_signature"
    else:
        assert 0 < thoughts <= budget, f"thoughts_token_count {thoughts} in (0, {budget}]"
        assert_signature(next(p for p in parts if not p.thought), "the first answer part")
    assert u.prompt_token_count > 0
    assert u.candidates_token_count >= 1, "the answer has tokens"
    assert u.candidates_token_count + thoughts <= max_tokens
    if cand.finish_reason == types.FinishReason.MAX_TOKENS:
        assert u.candidates_token_count + thoughts == max_tokens, "max_output_tokens covers thought and answer"
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count + thoughts
    return thought, answer


def test_model_thinks(served):
    """models.get: the Qwen 3 model thinks."""
    assert served.thinking is True


@pytest.mark.parametrize("include", [None, False, True])
def test_thinking_budget_zero(client, include):
    """thinking_budget 0: no thought parts, no thoughts_token_count, no signature."""
    response = client.models.generate_content(
        model=MODEL, contents="How does AI work?", config=thinking_cfg(0, include, seed=5)
    )
    assert_thinking(response, 0, include)


@pytest.mark.parametrize("include", [None, False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_thinking_budget_eight(client, seed, include):
    """thinking_budget 8: the model thinks first, at most 8 tokens; thought parts only with include_thoughts."""
    response = client.models.generate_content(
        model=MODEL, contents="How does AI work?", config=thinking_cfg(8, include, seed=seed, temperature=1)
    )
    assert_thinking(response, 8, include)


@pytest.mark.parametrize("budget,include", [(-1, None), (-1, True), (None, True), (None, None)])
def test_dynamic_thinking_is_capped(client, budget, include):
    """Dynamic thinking (thinking_budget -1, or no thinking_config) is capped by the server."""
    response = client.models.generate_content(
        model=MODEL, contents="Explain how AI works", config=thinking_cfg(budget, include, seed=3)
    )
    assert_thinking(response, THINK_CAP, include)


def test_include_thoughts_only_changes_what_is_shown(client):
    """include_thoughts only changes what is shown: same answer and counts at temperature 0."""
    hidden = client.models.generate_content(
        model=MODEL, contents="Why is the sky blue?", config=thinking_cfg(8, False, temperature=0)
    )
    shown = client.models.generate_content(
        model=MODEL, contents="Why is the sky blue?", config=thinking_cfg(8, True, temperature=0)
    )
    _, hidden_answer = assert_thinking(hidden, 8, False)
    _, shown_answer = assert_thinking(shown, 8, True)
    assert shown_answer == hidden_answer
    assert shown.usage_metadata.thoughts_token_count == hidden.usage_metadata.thoughts_token_count
    assert shown.usage_metadata.candidates_token_count == hidden.usage_metadata.candidates_token_count
    assert shown.candidates[0].finish_reason == hidden.candidates[0].finish_reason


def test_stream_thoughts_then_answer(client):
    """Streaming with include_thoughts: thoughts first, then the answer; both equal the unary reply at temperature 0."""
    config = thinking_cfg(8, True, temperature=0)
    unary = client.models.generate_content(model=MODEL, contents="Explain how AI works", config=config)
    unary_thought, unary_answer = assert_thinking(unary, 8, True)

    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Explain how AI works", config=config))
    assert len(chunks) >= 2, "a thought chunk and an answer chunk at least"
    thought, answer, first_answer_part = "", "", None
    for i, chunk in enumerate(chunks):
        cand = chunk.candidates[0]
        assert cand.content.role == "model", i
        assert cand.content.parts, f"chunk {i} has parts"
        assert chunk.response_id == chunks[0].response_id
        if i < len(chunks) - 1:
            assert cand.finish_reason is None, f"only the last chunk finishes (chunk {i})"
        for part in cand.content.parts:
            assert isinstance(part.text, str)
            if part.thought:
                assert first_answer_part is None, f"chunk {i}: no thought after the answer started"
                thought += part.text
            else:
                first_answer_part = first_answer_part or part
                answer += part.text
    assert chunks[0].candidates[0].content.parts[0].thought is True, "the first chunk is a thought"
    assert chunks[0].text is None, "a thought-only chunk has no response.text"
    assert_signature(first_answer_part, "the first streamed answer part")
    assert thought == unary_thought, "streamed thought == unary thought"
    assert answer == unary_answer, "streamed answer == unary answer"
    assert "".join(c.text or "" for c in chunks) == unary.text
    last = chunks[-1]
    assert last.candidates[0].finish_reason == unary.candidates[0].finish_reason
    for k in ("prompt_token_count", "candidates_token_count", "thoughts_token_count", "total_token_count"):
        assert getattr(last.usage_metadata, k) == getattr(unary.usage_metadata, k), k


def test_chat_sends_thoughts_back(client):
    """A chat sends thought parts and thought signatures back; hearth accepts them."""
    chat = client.chats.create(model=MODEL, config=thinking_cfg(8, True, seed=11))
    r1 = chat.send_message("I have 2 dogs in my house.")
    assert_thinking(r1, 8, True)
    chunks = list(chat.send_message_stream("How many paws are in my house?"))
    assert chunks[-1].candidates[0].finish_reason is not None
    assert chunks[-1].usage_metadata.prompt_token_count > r1.usage_metadata.prompt_token_count
    r3 = chat.send_message("And cats?")
    assert_thinking(r3, 8, True)

    history = chat.get_history(curated=True)
    assert [c.role for c in history] == ["user", "model", "user"] + ["model"] * len(chunks) + ["user", "model"]
    assert history[1] == r1.candidates[0].content, "reply 1 (thought part, signature) recorded as received"
    assert history[1].parts[0].thought is True
    assert any(p.thought_signature for p in history[1].parts)
    assert history[-1] == r3.candidates[0].content


# ---------------------------------------------------------------------------
# Structured output
# ---------------------------------------------------------------------------


def constrained(client, served, seed, temperature=1, contents="Describe an order as JSON.", **kw):
    response = client.models.generate_content(
        model=MODEL,
        contents=contents,
        config=types.GenerateContentConfig(
            max_output_tokens=output_budget(served, 300),
            seed=seed,
            temperature=temperature,
            thinking_config=types.ThinkingConfig(thinking_budget=0),
            **kw,
        ),
    )
    cand = response.candidates[0]
    assert cand.content.role == "model"
    assert cand.finish_reason == types.FinishReason.STOP, f"seed {seed}: the constrained answer completes ({response.text!r})"
    assert not response.usage_metadata.thoughts_token_count
    assert isinstance(response.text, str)
    return response


@pytest.mark.parametrize("seed", SEEDS)
def test_response_schema_object(client, served, seed):
    """response_schema OBJECT: enum, integer range, boolean, bounded string; keys in property_ordering order."""
    schema = {
        "type": "OBJECT",
        "properties": {
            "size": {"type": "STRING", "enum": ["S", "M", "L"]},
            "qty": {"type": "INTEGER", "minimum": 1, "maximum": 9},
            "gift": {"type": "BOOLEAN"},
            "note": {"type": "STRING", "maxLength": 6},
        },
        "required": ["size", "qty", "gift"],
        "propertyOrdering": ["qty", "size", "gift", "note"],
    }
    response = constrained(
        client, served, seed, response_mime_type="application/json", response_schema=json.loads(json.dumps(schema))
    )
    value = parse_json(response.text, seed)
    validate(schema, value, closed=True)
    assert list(value)[:3] == ["qty", "size", "gift"], "required keys first, in property_ordering order"
    assert response.parsed == value, "a dict schema: parsed is the JSON"


@pytest.mark.parametrize("seed", SEEDS)
def test_response_schema_array(client, served, seed):
    """response_schema ARRAY: items with enum, min_items/max_items."""
    schema = {"type": "ARRAY", "items": {"type": "STRING", "enum": ["red", "green", "blue"]}, "minItems": 1, "maxItems": 3}
    response = constrained(
        client, served, seed, response_mime_type="application/json", response_schema=json.loads(json.dumps(schema))
    )
    value = parse_json(response.text, seed)
    assert isinstance(value, list)
    validate(schema, value, closed=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_response_schema_any_of_and_nullable(client, served, seed):
    """response_schema anyOf and nullable."""
    schema = {
        "type": "OBJECT",
        "properties": {
            "v": {"anyOf": [{"type": "INTEGER", "minimum": 0, "maximum": 99}, {"type": "STRING", "enum": ["none", "many"]}]},
            "w": {"type": "STRING", "enum": ["x", "y"], "nullable": True},
        },
        "required": ["v", "w"],
        "propertyOrdering": ["v", "w"],
    }
    response = constrained(
        client, served, seed, response_mime_type="application/json", response_schema=json.loads(json.dumps(schema))
    )
    validate(schema, parse_json(response.text, seed), closed=True)


JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Lyon"]},
        "temp": {"type": "integer", "minimum": -20, "maximum": 40},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 2},
        "rain": {"type": ["boolean", "null"]},
    },
    "required": ["city", "temp", "rain"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("seed", SEEDS)
def test_response_json_schema(client, served, seed):
    """response_json_schema (plain JSON Schema): valid output, keys in the schema's order, parsed is the JSON."""
    response = constrained(
        client, served, seed, response_mime_type="application/json", response_json_schema=JSON_SCHEMA
    )
    value = parse_json(response.text, seed)
    validate(JSON_SCHEMA, value)
    assert list(value) == [k for k in JSON_SCHEMA["properties"] if k in value], "keys in the schema's order"
    assert response.parsed == value


class Pet(pydantic.BaseModel):
    species: Literal["cat", "dog", "fish"]
    age: int = pydantic.Field(ge=0, le=20)
    name: str = pydantic.Field(max_length=6)
    vaccinated: bool
    owner: Optional[Literal["Ann", "Bob"]] = None


@pytest.mark.parametrize("seed", SEEDS)
def test_pydantic_response_schema(client, served, seed):
    """A pydantic model as response_schema: the SDK converts it; response.parsed is a valid instance."""
    response = constrained(client, served, seed, response_mime_type="application/json", response_schema=Pet)
    value = parse_json(response.text, seed)
    assert list(value)[:4] == ["species", "age", "name", "vaccinated"], "the model's field order"
    assert isinstance(response.parsed, Pet), f"parsed is a Pet: {response.text!r}"
    assert response.parsed == Pet.model_validate(value)
    assert response.parsed.species in ("cat", "dog", "fish")
    assert 0 <= response.parsed.age <= 20
    assert len(response.parsed.name) <= 6


class Instrument(enum.Enum):
    PERCUSSION = "Percussion"
    STRING = "String"
    WOODWIND = "Woodwind"
    BRASS = "Brass"
    KEYBOARD = "Keyboard"


@pytest.mark.parametrize("seed", SEEDS)
def test_enum_output(client, served, seed):
    """text/x.enum: the text is exactly one of the values (a Python Enum or a STRING schema with enum)."""
    values = [i.value for i in Instrument]
    response = constrained(client, served, seed, response_mime_type="text/x.enum", response_schema=Instrument)
    assert response.text in values
    assert response.parsed is Instrument(response.text)
    response = constrained(
        client, served, seed, response_mime_type="text/x.enum", response_schema={"type": "STRING", "enum": values}
    )
    assert response.text in values
    # application/json with an enum schema: a JSON string.
    response = constrained(
        client, served, seed, response_mime_type="application/json", response_schema={"type": "STRING", "enum": values}
    )
    assert parse_json(response.text, seed) in values


def test_streamed_json_equals_unary(client, served):
    """Streamed JSON adds up to the unary JSON at temperature 0."""
    config = types.GenerateContentConfig(
        max_output_tokens=output_budget(served, 300),
        temperature=0,
        thinking_config=types.ThinkingConfig(thinking_budget=0),
        response_mime_type="application/json",
        response_schema=Pet,
    )
    unary = client.models.generate_content(model=MODEL, contents="A pet, please.", config=config)
    assert isinstance(unary.parsed, Pet)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="A pet, please.", config=config))
    assert "".join(c.text or "" for c in chunks) == unary.text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_bad_schemas_are_400(client):
    """Schemas hearth cannot enforce, or that are wrong, are a 400 naming the field."""

    def call(**kw):
        kw.setdefault("response_mime_type", "application/json")
        return client.models.generate_content(
            model=MODEL,
            contents="hi",
            config=types.GenerateContentConfig(
                max_output_tokens=16, thinking_config=types.ThinkingConfig(thinking_budget=0), **kw
            ),
        )

    # JSON Schema keywords that llguidance cannot enforce.
    unenforceable = {
        "uniqueItems": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "uniqueItems": True},
        "not": {"type": "string", "not": {"enum": ["a"]}},
    }
    for keyword, schema in unenforceable.items():
        with pytest.raises(errors.ClientError) as exc:
            call(response_json_schema=schema)
        assert_invalid(exc, rf"response_json_schema|[\"'`]{keyword}[\"'`]")
    # required names a property that is not declared.
    with pytest.raises(errors.ClientError) as exc:
        call(response_schema={"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["b"]})
    assert_invalid(exc, r"response_schema")
    # A schema without a JSON (or enum) mime type.
    with pytest.raises(errors.ClientError) as exc:
        call(response_mime_type=None, response_schema={"type": "STRING"})
    assert_invalid(exc, r"response_mime_type|response_schema")


# ---------------------------------------------------------------------------
# Function calling
# ---------------------------------------------------------------------------

WEATHER = {
    "name": "get_weather",
    "description": "Returns the current weather in a city.",
    "parameters": {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "enum": ["Paris", "Lyon"]},
            "unit": {"type": "STRING", "enum": ["C", "F"]},
        },
        "required": ["city"],
    },
}
TIME = {
    "name": "get_time",
    "description": "Returns the local time in a city.",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING", "enum": ["Paris", "Lyon"]}}, "required": ["city"]},
}
ASK = "What's the weather like in Paris?"


def tools_cfg(decls, mode=None, allowed=None, budget=0, **kw):
    """A config with function declarations (plain dicts, as JSON would carry them)."""
    tool_config = None
    if mode is not None:
        tool_config = types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=mode, allowed_function_names=allowed)
        )
    return types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_budget=budget),
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration.model_validate(d) for d in decls])],
        tool_config=tool_config,
        **kw,
    )


def params_of(decl):
    return json.loads(json.dumps(decl.get("parameters") or decl.get("parameters_json_schema")))


def assert_call(call, decls):
    """A function call valid against one of decls."""
    decl = next((d for d in decls if d["name"] == call.name), None)
    assert decl is not None, f"{call.name} is one of {[d['name'] for d in decls]}"
    validate(params_of(decl), call.args or {}, f"{call.name}.args", closed=True)
    if call.id is not None:
        assert isinstance(call.id, str)


def calls_of(response):
    return [p.function_call for p in (response.candidates[0].content.parts or []) if p.function_call]


def assert_tool_reply(response, reasons, max_tokens):
    """A reply to a request with tools: role, parts that are text or calls, usage."""
    assert response.candidates is not None and len(response.candidates) == 1
    cand = response.candidates[0]
    assert cand.finish_reason in reasons, cand.finish_reason
    if cand.finish_reason != types.FinishReason.MALFORMED_FUNCTION_CALL:
        assert cand.content.role == "model"
        assert cand.content.parts, "the reply has parts"
        for part in cand.content.parts:
            assert (part.text is not None) != (part.function_call is not None), f"a part is text or a call: {part}"
    u = response.usage_metadata
    assert u.prompt_token_count > 0
    if cand.content and calls_of(response):
        assert u.candidates_token_count, "the call's tokens are counted"
    assert (u.candidates_token_count or 0) + (u.thoughts_token_count or 0) <= max_tokens
    assert u.total_token_count == u.prompt_token_count + (u.candidates_token_count or 0) + (u.thoughts_token_count or 0)


STOP = [types.FinishReason.STOP]
TEXT_REASONS = [types.FinishReason.STOP, types.FinishReason.MAX_TOKENS]
AUTO_REASONS = TEXT_REASONS + [types.FinishReason.MALFORMED_FUNCTION_CALL]


@pytest.mark.parametrize("seed", SEEDS)
def test_mode_any(client, served, seed):
    """Mode ANY: a function call valid against its declaration, finish_reason STOP."""
    n = output_budget(served, 200)
    response = client.models.generate_content(
        model=MODEL, contents=ASK, config=tools_cfg([WEATHER], "ANY", max_output_tokens=n, seed=seed, temperature=1)
    )
    assert_tool_reply(response, STOP, n)
    assert response.function_calls, "response.function_calls is not empty"
    assert response.function_calls == calls_of(response)
    for call in response.function_calls:
        assert_call(call, [WEATHER])


@pytest.mark.parametrize("seed", SEEDS)
def test_mode_any_allowed_function_names(client, served, seed):
    """Mode ANY with allowed_function_names: only an allowed function is called."""
    n = output_budget(served, 200)
    response = client.models.generate_content(
        model=MODEL,
        contents="What time is it in Lyon?",
        config=tools_cfg([WEATHER, TIME], "ANY", ["get_time"], max_output_tokens=n, seed=seed, temperature=1),
    )
    assert_tool_reply(response, STOP, n)
    assert response.function_calls
    for call in response.function_calls:
        assert_call(call, [TIME])


@pytest.mark.parametrize("seed", SEEDS)
def test_mode_any_parameters_json_schema(client, served, seed):
    """Mode ANY with a parameters_json_schema declaration."""
    decl = {
        "name": "get_weather",
        "description": "Returns the current weather in a city.",
        "parameters_json_schema": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Lyon"]}, "days": {"type": "integer", "minimum": 1, "maximum": 3}},
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    }
    n = output_budget(served, 200)
    response = client.models.generate_content(
        model=MODEL, contents=ASK, config=tools_cfg([decl], "ANY", max_output_tokens=n, seed=seed, temperature=1)
    )
    assert_tool_reply(response, STOP, n)
    assert response.function_calls
    for call in response.function_calls:
        assert_call(call, [decl])


@pytest.mark.parametrize("seed", SEEDS)
def test_mode_none(client, seed):
    """Mode NONE: no function call parts."""
    response = client.models.generate_content(
        model=MODEL, contents=ASK, config=tools_cfg([WEATHER, TIME], "NONE", max_output_tokens=64, seed=seed, temperature=1)
    )
    assert_tool_reply(response, TEXT_REASONS, 64)
    assert response.function_calls is None
    assert isinstance(response.text, str)


@pytest.mark.parametrize("mode", ["AUTO", None])
@pytest.mark.parametrize("seed", SEEDS)
def test_mode_auto(client, seed, mode):
    """Mode AUTO (and no tool_config): a well-formed reply, text or function calls."""
    response = client.models.generate_content(
        model=MODEL, contents=ASK, config=tools_cfg([WEATHER, TIME], mode, max_output_tokens=64, seed=seed, temperature=1)
    )
    assert_tool_reply(response, AUTO_REASONS, 64)
    if response.candidates[0].content:
        for call in calls_of(response):
            assert call.name in ("get_weather", "get_time")
            assert isinstance(call.args, dict)


def test_call_after_thinking_is_signed(client, served):
    """A model that thought signs its first function call part."""
    n = output_budget(served, 200)
    response = client.models.generate_content(
        model=MODEL, contents=ASK, config=tools_cfg([WEATHER], "ANY", budget=4, max_output_tokens=n, seed=4)
    )
    assert_tool_reply(response, STOP, n)
    assert 0 < response.usage_metadata.thoughts_token_count <= 4
    parts = response.candidates[0].content.parts
    assert not any(p.thought for p in parts), "no thought parts without include_thoughts"
    assert parts[0].function_call is not None, "the first part is the call (ANY writes nothing else)"
    assert_call(parts[0].function_call, [WEATHER])
    assert_signature(parts[0], "the function call part")


@pytest.mark.parametrize("mode", ["NONE", "AUTO"])
def test_round_trip(client, served, mode):
    """Round trip: the call and a function response go back (signature included); the model answers."""
    n = output_budget(served, 200)
    first = client.models.generate_content(
        model=MODEL, contents=ASK, config=tools_cfg([WEATHER], "ANY", budget=4, max_output_tokens=n, seed=8)
    )
    assert_tool_reply(first, STOP, n)
    call = first.function_calls[0]
    assert_call(call, [WEATHER])
    model_turn = first.candidates[0].content
    assert any(p.thought_signature for p in model_turn.parts), "the model turn carries its signature back"
    contents = [
        types.Content(role="user", parts=[types.Part(text=ASK)]),
        model_turn,
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(
                    name=call.name, response={"city": call.args["city"], "temperature": 21, "unit": "C"}
                )
            ],
        ),
    ]
    reply = client.models.generate_content(
        model=MODEL, contents=contents, config=tools_cfg([WEATHER], mode, max_output_tokens=n, seed=8)
    )
    assert_tool_reply(reply, TEXT_REASONS if mode == "NONE" else AUTO_REASONS, n)
    if mode == "NONE":
        assert reply.function_calls is None
    assert reply.usage_metadata.prompt_token_count > first.usage_metadata.prompt_token_count


def test_stream_mode_any(client, served):
    """Streaming with mode ANY: the function call arrives whole in one chunk, as in the unary reply."""
    config = tools_cfg([WEATHER], "ANY", max_output_tokens=output_budget(served, 200), temperature=0)
    unary = client.models.generate_content(model=MODEL, contents=ASK, config=config)
    assert unary.function_calls
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=ASK, config=config))
    streamed = []
    for i, chunk in enumerate(chunks):
        cand = chunk.candidates[0]
        assert cand.content.role == "model", i
        assert cand.content.parts, f"chunk {i} has parts"
        for call in calls_of(chunk):
            assert_call(call, [WEATHER])  # complete: name and every required argument
            streamed.append(call)
    assert [(c.name, c.args) for c in streamed] == [(c.name, c.args) for c in unary.function_calls]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_function_calling_400s(client):
    """Function-calling requests Gemini refuses are a 400."""

    def call(decls, mode=None, allowed=None):
        return client.models.generate_content(
            model=MODEL, contents=ASK, config=tools_cfg(decls, mode, allowed, max_output_tokens=16)
        )

    # allowed_function_names is for mode ANY only.
    with pytest.raises(errors.ClientError) as exc:
        call([WEATHER, TIME], "AUTO", ["get_time"])
    assert_invalid(exc, r"allowed_function_names")
    # allowed_function_names naming a function that is not declared.
    with pytest.raises(errors.ClientError) as exc:
        call([WEATHER, TIME], "ANY", ["get_news"])
    assert_invalid(exc, r"allowed_function_names")
    # A function name with a space, or starting with a digit.
    for name in ("get weather", "1weather"):
        with pytest.raises(errors.ClientError) as exc:
            call([dict(WEATHER, name=name)])
        assert_invalid(exc, r"function_declarations\[0\]\.name")


# ---------------------------------------------------------------------------
# Automatic function calling (the Python SDK runs the function itself)
# ---------------------------------------------------------------------------


# The SDK writes the declaration from the annotations with their extras (so the
# enum reaches the schema and the random model can only pick a real city), but
# checks the arguments with isinstance against the bare type when it calls the
# function: a Literal or an Enum there fails ("Subscripted generics cannot be
# used with class and instance checks"), an Annotated str given as a string passes.
City = Annotated[str, pydantic.Field(json_schema_extra={"enum": ["Paris", "Lyon"]})]


def weather_tool():
    """A real function for the SDK to call, and the list of its calls."""
    calls = []

    def get_weather(city: "City") -> dict:
        """Returns the current weather in a city.

        Args:
          city: The city.
        """
        calls.append(city)
        return {"city": city, "temperature": 21, "unit": "C"}

    return get_weather, calls


def afc_cfg(fn, maximum_remote_calls, served):
    return types.GenerateContentConfig(
        max_output_tokens=output_budget(served, 200),
        seed=9,
        thinking_config=types.ThinkingConfig(thinking_budget=0),
        tools=[fn],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(maximum_remote_calls=maximum_remote_calls),
    )


def test_automatic_function_calling(client, served):
    """AFC with maximum_remote_calls 2: the SDK runs the function once and sends its result back."""
    fn, calls = weather_tool()
    response = client.models.generate_content(model=MODEL, contents=ASK, config=afc_cfg(fn, 2, served))
    assert len(calls) == 1 and calls[0] in ("Paris", "Lyon"), calls
    history = response.automatic_function_calling_history
    assert [c.role for c in history] == ["user", "model", "user"]
    assert history[0].parts[0].text == ASK
    call = next(p.function_call for p in history[1].parts if p.function_call)
    assert call.name == "get_weather" and call.args == {"city": calls[0]}
    fr = history[2].parts[0].function_response
    assert fr.name == "get_weather"
    assert fr.response == {"result": {"city": calls[0], "temperature": 21, "unit": "C"}}
    # The second request (the last one allowed) still had mode ANY: it came back
    # as a call, which the SDK returns to the caller without running it.
    assert response.function_calls
    for c in response.function_calls:
        assert c.name == "get_weather" and c.args["city"] in ("Paris", "Lyon")


def test_automatic_function_calling_limit_one(client, served):
    """AFC with maximum_remote_calls 1: one request; the SDK returns the call without running the function."""
    fn, calls = weather_tool()
    response = client.models.generate_content(model=MODEL, contents=ASK, config=afc_cfg(fn, 1, served))
    assert calls == [], "no request was left to send a result with, so the function was not run"
    assert not response.automatic_function_calling_history
    assert response.function_calls
    assert response.function_calls[0].name == "get_weather"
    assert response.function_calls[0].args["city"] in ("Paris", "Lyon")


def test_automatic_function_calling_in_chat(client, served):
    """AFC in a chat: the call, the result and the final reply are all in the history."""
    fn, calls = weather_tool()
    chat = client.chats.create(model=MODEL, config=afc_cfg(fn, 2, served))
    response = chat.send_message(ASK)
    assert len(calls) == 1 and calls[0] in ("Paris", "Lyon")
    history = chat.get_history(curated=True)
    assert [c.role for c in history] == ["user", "model", "user", "model"]
    assert any(p.function_call for p in history[1].parts)
    assert history[2].parts[0].function_response.name == "get_weather"
    assert history[3] == response.candidates[0].content
