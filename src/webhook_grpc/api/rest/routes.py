"""The REST routes, read from the `google.api.http` option of each RPC (never written by hand)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
_VERBS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class PathVariable:
    """`{subscription.id}` in a template: the route's placeholder and the field path it sets."""

    placeholder: str
    field_path: str


@dataclass(frozen=True)
class Route:
    """One RPC's HTTP binding."""

    http_method: str
    template: str
    """The annotation's path, e.g. /api/v1/webhooks/subscriptions/{id}."""
    body: str
    """'*' (the whole request), a field name, or '' (no body: everything from the query)."""
    method: MethodDescriptor

    @property
    def service(self) -> ServiceDescriptor:
        return self.method.containing_service

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming)

    @property
    def variables(self) -> tuple[PathVariable, ...]:
        """Each placeholder is the last name of its field path (`{subscription.id}` is
        `{id}`), numbered if two would be the same."""
        variables: list[PathVariable] = []
        for match in _VARIABLE.finditer(self.template):
            name = match.group(1).rpartition(".")[2]
            if any(variable.placeholder == name for variable in variables):
                name += str(len(variables))
            variables.append(PathVariable(name, match.group(1)))
        return tuple(variables)

    @property
    def path(self) -> str:
        """The template with plain placeholders, as aiohttp's router and OpenAPI write it."""
        names = iter(variable.placeholder for variable in self.variables)
        return _VARIABLE.sub(lambda _: "{" + next(names) + "}", self.template)


def routes_of(files: Iterable[FileDescriptor]) -> list[Route]:
    """Every annotated RPC of every service in `files`, in declaration order."""
    return [
        route
        for file in files
        for service in file.services_by_name.values()
        for method in service.methods
        for route in _bindings(method)
    ]


def _bindings(method: MethodDescriptor) -> Iterator[Route]:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    for binding in (rule, *rule.additional_bindings):
        verb = binding.WhichOneof("pattern")
        if verb not in _VERBS:
            raise ValueError(f"{method.full_name}: unsupported HTTP rule {verb!r}")
        yield Route(verb.upper(), getattr(binding, verb), binding.body, method)
