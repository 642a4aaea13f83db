"""The guide's system-instruction and chat examples through google-genai on
models whose chat templates refuse what Gemini accepts: gemma2t-f32 (a
Gemma 2-style template: no system role, strictly alternating turns) and
mistralnemot-f32 (a Mistral Nemo-style one), made by
testdata/models/make_template_models.py. hearth reshapes every conversation
into what the template takes: each request answers 200, never the template's
exception. tests/sdk/run.sh serves both beside the guide's default model.
"""

import pathlib

import pytest
from google import genai
from google.genai import errors, types

MODELS = ["gemma2t-f32", "mistralnemot-f32"]
MAX = 8
SEED = 7
NEKO = "You are a cat. Your name is Neko."


@pytest.fixture(scope="module")
def client():
    return genai.Client()


def assert_reply(response):
    assert response.candidates is not None and len(response.candidates) == 1
    cand = response.candidates[0]
    assert cand.content is not None and cand.content.role == "model"
    assert cand.finish_reason in (types.FinishReason.STOP, types.FinishReason.MAX_TOKENS)
    assert response.usage_metadata.prompt_token_count > 0


@pytest.mark.parametrize("model", MODELS)
def test_system_instruction_example(client, model):
    plain = client.models.generate_content(
        model=model, contents="Hello there", config=types.GenerateContentConfig(max_output_tokens=MAX, seed=SEED)
    )
    assert_reply(plain)
    neko = client.models.generate_content(
        model=model,
        contents="Hello there",
        config=types.GenerateContentConfig(system_instruction=NEKO, max_output_tokens=MAX, seed=SEED),
    )
    assert_reply(neko)
    assert neko.usage_metadata.prompt_token_count > plain.usage_metadata.prompt_token_count + 5
    assert "Chat template:" in (client.models.get(model=model).description or "")


@pytest.mark.parametrize("model", MODELS)
def test_chat_example_with_history_and_stream(client, model):
    chat = client.chats.create(
        model=model,
        history=[
            types.Content(role="user", parts=[types.Part(text="Hello")]),
            types.Content(role="model", parts=[types.Part(text="Great to meet you. What would you like to know?")]),
        ],
        config=types.GenerateContentConfig(system_instruction=NEKO, max_output_tokens=MAX, seed=SEED),
    )
    assert_reply(chat.send_message("I have 2 dogs in my house."))
    assert_reply(chat.send_message("How many paws are in my house?"))
    chunks = list(chat.send_message_stream("And cats?"))
    assert_reply(chunks[-1])
    roles = [c.role for c in chat.get_history(curated=False)]
    # A streamed reply is kept as one model content per chunk.
    assert roles[:7] == ["user", "model", "user", "model", "user", "model", "user"]
    assert len(roles) > 7 and set(roles[7:]) == {"model"}, roles


@pytest.mark.parametrize("model", MODELS)
def test_two_calls_without_ids_and_consecutive_user_turns(client, model):
    weather = types.FunctionDeclaration(
        name="get_weather",
        description="Weather of a city",
        parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}),
    )
    response = client.models.generate_content(
        model=model,
        contents=[
            types.Content(role="user", parts=[types.Part(text="Weather in Paris and Rome?")]),
            types.Content(
                role="model",
                parts=[
                    types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "Paris"})),
                    types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "Rome"})),
                ],
            ),
            types.Content(
                role="user",
                parts=[
                    types.Part(function_response=types.FunctionResponse(name="get_weather", response={"report": "sunny"})),
                    types.Part(function_response=types.FunctionResponse(name="get_weather", response={"report": "rainy"})),
                ],
            ),
            types.Content(role="user", parts=[types.Part(text="And tomorrow?")]),
        ],
        config=types.GenerateContentConfig(
            system_instruction="Answer with the weather.",
            tools=[types.Tool(function_declarations=[weather])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            max_output_tokens=MAX,
            seed=SEED,
        ),
    )
    assert response.candidates is not None and len(response.candidates) == 1


def test_image_in_system_instruction_is_read(client):
    png = (pathlib.Path(__file__).parents[2] / "testdata/images/gemma3v-test.png").read_bytes()
    response = client.models.generate_content(
        model="gemma3v-f32",
        contents="What is this style called?",
        config=types.GenerateContentConfig(
            system_instruction=types.Content(
                parts=[types.Part(text="Describe pictures like this one:"), types.Part.from_bytes(data=png, mime_type="image/png")]
            ),
            max_output_tokens=MAX,
            seed=SEED,
        ),
    )
    assert_reply(response)
    details = {d.modality: d.token_count for d in response.usage_metadata.prompt_tokens_details or []}
    assert details.get(types.MediaModality.IMAGE, 0) > 0, details


def test_video_in_system_instruction_is_a_400_naming_the_part(client):
    with pytest.raises(errors.ClientError) as err:
        client.models.generate_content(
            model="gemma3v-f32",
            contents="Summarise.",
            config=types.GenerateContentConfig(
                system_instruction=types.Content(parts=[types.Part.from_bytes(data=b"\x00\x00\x00\x18ftypmp42", mime_type="video/mp4")]),
                max_output_tokens=MAX,
            ),
        )
    assert err.value.code == 400
    assert "system_instruction.parts[0]" in str(err.value)
