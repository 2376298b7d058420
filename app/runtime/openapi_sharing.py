"""Each example and response header said once in the OpenAPI document.

Operations repeat much of what they document: the same screening request under two
operations, the same request as JSON and as FHIR JSON, the same 401, 429 and 503 problems and
their headers on every protected operation. ``share_repeated`` moves every Example object and
header object that occurs more than once into ``components`` and refers to it with ``$ref``
(which Swagger UI, ReDoc, schemathesis and client generators resolve), so that the document
says each once: it is smaller to send and quicker for /docs to parse. What each operation
documents is unchanged once the references are resolved.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson

Json = dict[str, Any]


def _media_types(paths: Json) -> Iterator[Json]:
    """Every media type object of the operations: request bodies' and responses'."""
    for item in paths.values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            yield from operation.get("requestBody", {}).get("content", {}).values()
            for response in operation.get("responses", {}).values():
                yield from response.get("content", {}).values()


def _responses(paths: Json) -> Iterator[Json]:
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict):
                yield from operation.get("responses", {}).values()


def _identity(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "example"


def _share(maps: list[Json], components: Json, kind: str, name_of: Any) -> None:
    """Replace each entry of ``maps`` (name → object) that occurs more than once by a
    reference to one copy in ``components`` (``#/components/<kind>/<name>``)."""
    counts = Counter(_identity(value) for entries in maps for value in entries.values())
    names: dict[bytes, str] = {}
    for entries in maps:
        for key, value in entries.items():
            identity = _identity(value)
            if counts[identity] < 2 or "$ref" in value:
                continue
            if identity not in names:
                base = name_of(key, value)
                name, number = base, 1
                while name in components:
                    number += 1
                    name = f"{base}-{number}"
                names[identity] = name
                components[name] = value
            entries[key] = {"$ref": f"#/components/{kind}/{names[identity]}"}


def share_repeated(document: Json) -> None:
    """Move the repeated examples and response headers of ``document`` into its components."""
    paths = document["paths"]
    components = document.setdefault("components", {})
    examples = [media["examples"] for media in _media_types(paths) if media.get("examples")]
    _share(
        examples,
        components.setdefault("examples", {}),
        "examples",
        lambda key, value: _slug(value.get("summary") or key),
    )
    headers = [response["headers"] for response in _responses(paths) if response.get("headers")]
    _share(headers, components.setdefault("headers", {}), "headers", lambda key, _: key)
    for kind in ("examples", "headers"):
        if not components[kind]:
            del components[kind]
