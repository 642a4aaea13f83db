"""Writes request_full_snake.json, the snake_case twin of request_full_camel.json.

Every proto field name becomes snake_case (as the Python SDK leaks them);
free-form values (functionCall.args, functionResponse.response, *JsonSchema,
schema property names, example/default, opaque configs) stay verbatim.
Run from the repository root: python3 testdata/golden/make_snake.py
"""
import json
import re

FREE = {"args", "parametersJsonSchema", "responseJsonSchema", "example", "default"}
OPAQUE = {"speechConfig", "imageConfig", "retrievalConfig"}


def snake(k):
    return re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower()


def conv(o, parent=None):
    if isinstance(o, dict):
        out = {}
        for k, v in o.items():
            nk = snake(k)
            if k in FREE or k in OPAQUE or (k == "response" and parent == "functionResponse"):
                out[nk] = v
            elif k == "properties":
                out[nk] = {pk: conv(pv, "schema") for pk, pv in v.items()}
            else:
                out[nk] = conv(v, k)
        return out
    if isinstance(o, list):
        return [conv(v, parent) for v in o]
    return o


src = json.load(open("testdata/golden/request_full_camel.json"))
with open("testdata/golden/request_full_snake.json", "w") as f:
    json.dump(conv(src), f, indent=2, ensure_ascii=False)
