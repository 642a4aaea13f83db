"""The real-model tier: the guide's examples through the official Python SDK
(google-genai) against hearth serving its default model, the trained
SmolLM2-135M-Instruct (tests/sdk/run.sh starts `hearth serve` with no
--model). Every generation runs at temperature 0 (the model's greedy answer),
and each assertion is one a trained model passes and a broken pipeline (a
wrong template, tokenizer, sampler, KV reuse, history or grammar) fails.
"""

import json
import os
import re

import pytest
from google import genai
from google.genai import types

if not os.environ.get("GOOGLE_GEMINI_BASE_URL"):
    pytest.exit("GOOGLE_GEMINI_BASE_URL must point at hearth (tests/sdk/run.sh)", returncode=2)

MODEL = "gemini-2.5-flash"
COMMON = set("the a an is are of to and in it that this for on with as by be can or from its they you i at which".split())


@pytest.fixture(scope="module")
def client():
    return genai.Client()


def greedy(**kw):
    return types.GenerateContentConfig(temperature=0, max_output_tokens=64, **kw)


def assert_english(text):
    words = re.findall(r"[a-z']+", text.lower())
    assert len(words) >= 8, text
    assert sum(w in COMMON for w in words) / len(words) > 0.15, text
    assert sum(ord(c) < 128 for c in text) / len(text) > 0.95, text


def test_default_model_is_smollm2(client):
    model = client.models.get(model=MODEL)
    assert model.name == "models/smollm2-135m-instruct"
    assert (model.temperature, model.top_p) == (0.2, 0.9)
    assert "/" not in (model.description or "") and ".gguf" not in (model.description or "")


def test_guide_first_example_answers_in_english(client):
    response = client.models.generate_content(model=MODEL, contents="How does AI work?", config=greedy())
    assert_english(response.text)
    assert re.search(r"\b(AI|artificial intelligence|machine|learn|data|computer)", response.text, re.I), response.text


def test_factual_question(client):
    response = client.models.generate_content(model=MODEL, contents="Who wrote Romeo and Juliet?", config=greedy())
    assert "Shakespeare" in response.text, response.text


def test_system_instruction_followed(client):
    response = client.models.generate_content(
        model=MODEL,
        contents="Hello there",
        config=greedy(system_instruction="You are a cat. Your name is Neko."),
    )
    assert "Neko" in response.text, response.text
    plain = client.models.generate_content(model=MODEL, contents="Hello there", config=greedy())
    assert "Neko" not in plain.text, plain.text


def test_chat_second_turn_uses_the_first(client):
    chat = client.chats.create(model=MODEL, config=greedy())
    chat.send_message("I have a cat named Mochi.")
    second = chat.send_message("What is my cat's name?")
    assert "Mochi" in second.text, second.text
    assert len(chat.get_history()) == 4
    blind = client.chats.create(model=MODEL, config=greedy()).send_message("What is my cat's name?")
    assert "Mochi" not in blind.text, blind.text


def test_json_schema_filled_sensibly(client):
    schema = types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING), "country": types.Schema(type=types.Type.STRING)},
        required=["city", "country"],
        property_ordering=["city", "country"],
    )
    response = client.models.generate_content(
        model=MODEL,
        contents="Paris is the capital of France. Give the city and its country.",
        config=greedy(response_mime_type="application/json", response_schema=schema),
    )
    value = json.loads(response.text)
    assert list(value) == ["city", "country"]
    assert "Paris" in value["city"], response.text
    assert "france" in value["country"].lower(), response.text
    assert response.parsed is not None


def test_stream_equals_unary(client):
    unary = client.models.generate_content(model=MODEL, contents="Explain how AI works", config=greedy())
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Explain how AI works", config=greedy()))
    assert len(chunks) > 1
    streamed = "".join(c.text or "" for c in chunks)
    assert streamed == unary.text
    assert_english(streamed)


def test_uploaded_pdf_is_read_the_answer_is_only_in_it(client):
    # testdata/documents/fact.pdf (made by make_pdfs.py): "The office cat is named Biscuit."
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "documents" / "fact.pdf"
    file = client.files.upload(file=path)
    assert file.mime_type == "application/pdf"
    question = "What is the name of the office cat?"
    contents = [types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type), question]
    response = client.models.generate_content(model=MODEL, contents=contents, config=greedy())
    assert "Biscuit" in response.text, response.text
    usage = response.usage_metadata
    doc = [d.token_count for d in usage.prompt_tokens_details if d.modality.value == "DOCUMENT"]
    assert doc and doc[0] > 10, usage
    assert client.models.count_tokens(model=MODEL, contents=contents).total_tokens == usage.prompt_token_count
    inline = [types.Part.from_bytes(data=path.read_bytes(), mime_type="application/pdf"), question]
    streamed = "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents=inline, config=greedy()))
    assert streamed == response.text
    client.files.delete(name=file.name)
