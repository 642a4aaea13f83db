"""SDK conformance: the Files API through the official Python SDK
(google-genai 3.6.1) against a running hearth: upload (a real PNG and a text
file), get, list, the text file's uri in generate_content, delete; a ~20 MB
upload in 8 MiB chunks (the byte requests carry no API key: the upload URL is
the credential); the documented 400s and 403s.

Pointed at hearth through the environment (tests/sdk/run.sh sets
GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY and gives hearth a fresh --files-dir).
"""

import base64
import hashlib
import os
import re

import pytest
from google import genai
from google.genai import errors, types

BASE_URL = os.environ.get("GOOGLE_GEMINI_BASE_URL")
if not BASE_URL or not os.environ.get("GEMINI_API_KEY"):
    pytest.exit("GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY must be set; see tests/sdk/run.sh", returncode=2)

MODEL = "gemini-2.5-flash"
MAX = 8
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
NOTES = "The pipe organ is a keyboard instrument. Its pipes are grouped in ranks."


@pytest.fixture(scope="module")
def client():
    # Kept for the whole module: the sync client closes its pool when collected.
    return genai.Client()


def sha256_hash(data: bytes) -> str:
    """Google's sha256Hash: base64 of the lowercase hex digest."""
    return base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode()


def assert_file(f, mime_type, data, display_name=None):
    assert re.fullmatch(r"files/[a-z0-9]+", f.name), f.name
    assert f.mime_type == mime_type
    assert f.size_bytes == len(data)
    assert f.sha256_hash == sha256_hash(data)
    assert f.state == types.FileState.ACTIVE
    assert f.source == types.FileSource.UPLOADED
    assert f.display_name == display_name
    assert f.uri.endswith("/" + f.name)
    assert abs((f.expiration_time - f.create_time).total_seconds() - 48 * 3600) < 1


def test_files_round_trip(client, tmp_path):
    """Upload a PNG and a text file, get, list, generate with the text file, delete."""
    png = tmp_path / "organ.png"
    png.write_bytes(PNG_1X1)
    txt = tmp_path / "notes.txt"
    txt.write_text(NOTES)
    pic = client.files.upload(file=str(png), config=types.UploadFileConfig(display_name="organ picture"))
    assert_file(pic, "image/png", PNG_1X1, "organ picture")
    notes = client.files.upload(file=str(txt))
    assert_file(notes, "text/plain", NOTES.encode())

    assert client.files.get(name=pic.name) == pic
    # page_size 1: the pager follows nextPageToken through every file.
    listed = [f.name for f in client.files.list(config={"page_size": 1})]
    assert pic.name in listed and notes.name in listed

    # The text file's uri in generate_content: its text is the prompt, as if inline.
    from_file = [types.Part.from_uri(file_uri=notes.uri, mime_type=notes.mime_type), "Summarize."]
    response = client.models.generate_content(
        model=MODEL, contents=from_file, config=types.GenerateContentConfig(max_output_tokens=MAX)
    )
    assert response.candidates[0].content.role == "model"
    counted = client.models.count_tokens(model=MODEL, contents=from_file)
    inline = client.models.count_tokens(model=MODEL, contents=[NOTES, "Summarize."])
    assert counted.total_tokens == inline.total_tokens, "the file's text reached the prompt"

    # The PNG: the documented 400 of a text-only model.
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(
            model=MODEL,
            contents=[types.Part.from_uri(file_uri=pic.uri, mime_type=pic.mime_type), "Caption this image."],
            config=types.GenerateContentConfig(max_output_tokens=MAX),
        )
    assert exc.value.code == 400
    assert exc.value.status == "INVALID_ARGUMENT"
    assert "cannot read image/png" in exc.value.message

    for f in (pic, notes):
        client.files.delete(name=f.name)
        with pytest.raises(errors.ClientError) as exc:
            client.files.get(name=f.name)
        assert exc.value.code == 403
        assert exc.value.status == "PERMISSION_DENIED"
        assert "or it may not exist" in exc.value.message


def test_twenty_megabytes_in_chunks(client, tmp_path):
    """A ~20 MB upload goes up in 8 MiB chunks (without the key) and comes back whole."""
    data = hashlib.shake_256(b"hearth").digest(20 * 1000 * 1000)
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    f = client.files.upload(file=str(big), config=types.UploadFileConfig(mime_type="application/octet-stream"))
    assert_file(f, "application/octet-stream", data)
    client.files.delete(name=f.name)


def test_mismatched_content_is_a_400(client, tmp_path):
    """Bytes that are not the declared image type: the SDK raises the server's 400 at once."""
    fake = tmp_path / "fake.png"
    fake.write_text("this is not a picture")
    with pytest.raises(errors.ClientError) as exc:
        client.files.upload(file=str(fake))
    assert exc.value.code == 400
    assert "not image/png content" in exc.value.message


def test_unknown_file_in_generate_is_403(client):
    """An unknown file in generate_content is Google's 403."""
    uri = BASE_URL.rstrip("/") + "/v1beta/files/nosuchfile"
    with pytest.raises(errors.ClientError) as exc:
        client.models.generate_content(model=MODEL, contents=[types.Part.from_uri(file_uri=uri, mime_type="text/plain"), "Hi"])
    assert exc.value.code == 403
    assert "access the File nosuchfile or it may not exist" in exc.value.message
