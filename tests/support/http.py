"""A plain HTTP client for the REST tests: requests as curl would send them, no project code."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    def violated_fields(self) -> list[str]:
        """The field names of the google.rpc.BadRequest detail of an error body."""
        return [
            violation["field"]
            for detail in self.json.get("details", [])
            if detail.get("@type", "").endswith("google.rpc.BadRequest")
            for violation in detail.get("field_violations", [])
        ]


class Http:
    """Requests to one server's REST listener, as one bearer token (or none)."""

    def __init__(self, base: str, session: aiohttp.ClientSession, token: str | None) -> None:
        self.base = base
        self._session = session
        self._token = token

    def as_token(self, token: str | None) -> Http:
        return Http(self.base, self._session, token)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if self._token is not None:
            sent["Authorization"] = f"Bearer {self._token}"
        data: Any = io.BytesIO(raw) if raw is not None else None
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        async with self._session.request(
            method, self.base + path, data=data, params=params, headers=sent
        ) as response:
            return Reply(response.status, dict(response.headers), await response.text())

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return await self.request("POST", path, body, **kwargs)
