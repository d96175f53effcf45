"""The OpenAPI 3.1 document of the REST routes, generated from the protos (`make generate`
runs scripts/gen_openapi.py; the result is committed beside this module and served as is)."""

from __future__ import annotations

from importlib import resources

FILE_NAME = "openapi.json"


def document() -> bytes:
    return (resources.files(__package__) / FILE_NAME).read_bytes()
