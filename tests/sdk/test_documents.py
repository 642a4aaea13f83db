"""PDFs as input through the official Python SDK (google-genai 3.6.1), on
the tiny tier (tests/sdk/run.sh): the guide's pattern (files.upload, then
Part.from_uri) and inline bytes, on the tiny vision model (each page's image
reaches its projector) and the tiny text-only one (each page's text);
DOCUMENT in usage; countTokens equal to the prompt's usage; the 400s.
"""

import os
import pathlib

import pytest
from google import genai
from google.genai import errors, types

if not os.environ.get("GOOGLE_GEMINI_BASE_URL"):
    pytest.exit("GOOGLE_GEMINI_BASE_URL must point at a running hearth (see tests/sdk/run.sh)", returncode=2)

TEXT_MODEL = "gemini-2.5-flash"
VISION = "gemma3v-f32"
IMAGE_TOKENS = 4  # mm_tokens_per_image of the tiny projector
DOCS = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "documents"
SAMPLE = DOCS / "sample.pdf"  # 5 pages, one of them an image only
PAGES = 5


@pytest.fixture(scope="module")
def client():
    return genai.Client()


def tokens(usage, modality):
    return sum(d.token_count for d in usage.prompt_tokens_details or [] if d.modality.value == modality)


def test_uploaded_pdf_reaches_vision_and_text_models(client):
    file = client.files.upload(file=SAMPLE)
    assert file.mime_type == "application/pdf"
    contents = [types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type), "Summarize this report."]
    inline = [types.Part.from_bytes(data=SAMPLE.read_bytes(), mime_type="application/pdf"), "Summarize this report."]
    config = types.GenerateContentConfig(temperature=0, max_output_tokens=8)
    doc_tokens = {}
    for model in (VISION, TEXT_MODEL):
        response = client.models.generate_content(model=model, contents=contents, config=config)
        usage = response.usage_metadata
        assert tokens(usage, "IMAGE") == 0, "pages count as DOCUMENT"
        assert tokens(usage, "TEXT") + tokens(usage, "DOCUMENT") == usage.prompt_token_count
        counted = client.models.count_tokens(model=model, contents=contents)
        assert counted.total_tokens == usage.prompt_token_count
        doc_tokens[model] = tokens(usage, "DOCUMENT")
        # Streamed = unary at temperature 0, the same PDF sent inline.
        streamed = "".join(c.text or "" for c in client.models.generate_content_stream(model=model, contents=inline, config=config))
        assert streamed == (response.text or "")
    assert doc_tokens[VISION] >= PAGES * IMAGE_TOKENS + 100, doc_tokens
    assert doc_tokens[TEXT_MODEL] >= 100, doc_tokens
    client.files.delete(name=file.name)


@pytest.mark.parametrize("name,why", [("encrypted.pdf", "encrypted"), ("nopages.pdf", "no pages")])
def test_unreadable_pdf_is_a_400_that_says_why(client, name, why):
    part = types.Part.from_bytes(data=(DOCS / name).read_bytes(), mime_type="application/pdf")
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(model=VISION, contents=[part, "Read it."])
    assert e.value.code == 400
    assert "contents[0].parts[0].inline_data" in e.value.message
    assert why in e.value.message


def test_code_is_read_as_text_and_other_documents_are_refused(client):
    code = "def add(a, b):\n    return a + b\n"
    for mime in ("text/x-python", "application/x-javascript", "text/rtf"):
        part = types.Part.from_bytes(data=code.encode(), mime_type=mime)
        as_file = client.models.count_tokens(model=TEXT_MODEL, contents=[part, "Explain."])
        as_text = client.models.count_tokens(model=TEXT_MODEL, contents=[code, "Explain."])
        assert as_file.total_tokens == as_text.total_tokens, mime
    word = types.Part.from_bytes(data=b"PK\x03\x04", mime_type="application/msword")
    with pytest.raises(errors.ClientError) as e:
        client.models.count_tokens(model=TEXT_MODEL, contents=[word, "Explain."])
    assert e.value.code == 400
    assert "Unsupported MIME type: application/msword" in e.value.message
