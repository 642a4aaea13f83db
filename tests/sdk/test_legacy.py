"""The legacy Python SDK (google-generativeai 0.8, still in many apps) against
hearth serving its default model, the trained SmolLM2-135M-Instruct
(tests/sdk/run.sh). Over REST it calls every method with
`$alt=json;enum-encoding=int`, sends every enum as its proto number
(`"type": 6` for OBJECT, `"mode": 2` for ANY, safety categories 7 ...), int64
values as strings, countTokens as a `generateContentRequest`, streams without
`alt=sse` (a JSON array), and function results in a turn of role `user`.
Greedy (temperature 0), with assertions a working pipeline passes.

Not covered: `genai.upload_file`, which fetches Google's discovery document
from a hard-coded googleapis.com address whatever the endpoint.
"""

import json
import os

import google.generativeai as genai
import pytest

BASE_URL = os.environ.get("GOOGLE_GEMINI_BASE_URL")
API_KEY = os.environ.get("GEMINI_API_KEY")
if not BASE_URL or not API_KEY:
    pytest.exit("GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY must be set (tests/sdk/run.sh)", returncode=2)

genai.configure(api_key=API_KEY, transport="rest", client_options={"api_endpoint": BASE_URL})
MODEL = "gemini-1.5-flash"
GREEDY = {"temperature": 0, "max_output_tokens": 64}


def test_system_instruction_config_and_safety_settings():
    model = genai.GenerativeModel(MODEL, system_instruction="You are a cat. Your name is Neko.")
    response = model.generate_content(
        "Hello there",
        generation_config=GREEDY,
        safety_settings={"HARASSMENT": "BLOCK_ONLY_HIGH", "HATE": "BLOCK_LOW_AND_ABOVE"},
    )
    assert "Neko" in response.text, response.text


def test_schema_with_numbered_types_is_filled_sensibly():
    model = genai.GenerativeModel(MODEL)
    response = model.generate_content(
        "Paris is the capital of France. Give the city and its country.",
        generation_config=genai.GenerationConfig(
            temperature=0,
            max_output_tokens=64,
            response_mime_type="application/json",
            response_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                "required": ["city", "country"],
            },
        ),
    )
    value = json.loads(response.text)
    assert "Paris" in value["city"], response.text
    assert "france" in value["country"].lower(), response.text


def test_stream_as_a_json_array_equals_unary_and_count_tokens_matches():
    model = genai.GenerativeModel(MODEL)
    prompt = "Who wrote Romeo and Juliet?"
    unary = model.generate_content(prompt, generation_config=GREEDY)
    assert "Shakespeare" in unary.text, unary.text
    chunks = list(model.generate_content(prompt, generation_config=GREEDY, stream=True))
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == unary.text
    assert model.count_tokens(prompt).total_tokens == unary.usage_metadata.prompt_token_count


def test_forced_function_call_then_its_result():
    def get_weather(city: str) -> dict:
        """The current weather in a city."""
        return {"sky": "clear", "temperature_celsius": 21}

    model = genai.GenerativeModel(
        MODEL,
        tools=[get_weather],
        tool_config={"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_weather"]}},
        generation_config=GREEDY,
    )
    chat = model.start_chat()
    first = chat.send_message("What is the weather in Paris?")
    call = first.candidates[0].content.parts[0].function_call
    assert call.name == "get_weather", first
    assert isinstance(call.args["city"], str)
    second = chat.send_message(
        genai.protos.Content(
            parts=[
                genai.protos.Part(
                    function_response=genai.protos.FunctionResponse(
                        name="get_weather", response=get_weather(call.args["city"])
                    )
                )
            ]
        )
    )
    assert len(second.candidates) == 1
    assert [c.role for c in chat.history] == ["user", "model", "user", "model"]
