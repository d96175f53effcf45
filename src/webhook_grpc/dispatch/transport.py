"""The HTTP client behind one small interface: POST a body, get an outcome, never raise.

aiohttp, chosen by measurement (see docs/PERFORMANCE.md): on this kind of machine httpx 0.28's
AsyncClient managed about 280 POSTs/s at 32 concurrent requests where aiohttp held thousands."""

from __future__ import annotations

import functools
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import aiohttp
from opentelemetry.trace import SpanKind, Status, StatusCode
from yarl import URL

from webhook_grpc import __version__, tracing
from webhook_grpc.domain.custom_headers import is_reserved_header
from webhook_grpc.domain.models import AttemptError
from webhook_grpc.tracing import Tracing

from .resolver import ForbiddenTargetError, GuardedResolver, check_literal_host

USER_AGENT = f"webhook-grpc/{__version__}"
BODY_PREFIX = 1024
# Read at most this much of a response before giving the connection up instead of draining it.
DRAIN_LIMIT = 64 * 1024


@dataclass(frozen=True)
class HttpOutcome:
    status_code: int | None
    latency: timedelta
    error: AttemptError | None
    error_message: str = ""
    response_body: str = ""
    retry_after: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


class HttpTransport:
    def __init__(
        self,
        timeout: timedelta,
        allow_private: bool,
        max_connections: int = 256,
        tracing: Tracing = tracing.OFF,
    ) -> None:
        self._tracing = tracing
        self._timeout = aiohttp.ClientTimeout(total=timeout.total_seconds())
        self._allow_private = allow_private
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            resolver=GuardedResolver(allow_private=self._allow_private),
            ttl_dns_cache=10,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        custom_headers: Mapping[str, str] | None = None,
    ) -> HttpOutcome:
        """POST `body` with `headers` (the signed ones) and the subscription's
        `custom_headers`; where a custom header names one the service sets, the service's wins.
        With tracing on, the POST is a client span, whose context `traceparent` carries."""
        if custom_headers:
            headers = with_custom_headers(headers, custom_headers)
        if not self._tracing.enabled:
            return await self._post(url, body, headers)
        parts = urlsplit(url)
        # Neither the path nor the query: a webhook URL often holds a token in either.
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
            "url.scheme": parts.scheme,
        }
        with self._tracing.tracer.start_as_current_span(
            "POST",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            traced = dict(headers)
            tracing.inject(traced)
            outcome = await self._post(url, body, traced)
            if outcome.status_code is not None:
                span.set_attribute("http.response.status_code", outcome.status_code)
            if outcome.error is not None:
                span.set_attribute("error.type", outcome.error.value)
                span.set_status(Status(StatusCode.ERROR))
            return outcome

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpOutcome:
        assert self._session is not None, "transport not started"
        started = time.perf_counter()

        def elapsed() -> timedelta:
            return timedelta(seconds=time.perf_counter() - started)

        try:
            target, host = _parsed(url)
            check_literal_host(host, self._allow_private)
            async with self._session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                prefix = await response.content.read(BODY_PREFIX)
                await _drain(response)
                status = response.status
                ok = 200 <= status < 300
                return HttpOutcome(
                    status_code=status,
                    latency=elapsed(),
                    error=None if ok else AttemptError.HTTP_STATUS,
                    error_message="" if ok else f"HTTP {status}",
                    # PostgreSQL text cannot hold NUL: one such body would fail its batch.
                    response_body=prefix.decode("utf-8", errors="replace").replace(
                        "\x00", "\ufffd"
                    ),
                    retry_after=response.headers.get("Retry-After"),
                )
        except ForbiddenTargetError as error:
            return HttpOutcome(None, elapsed(), AttemptError.REFUSED_TARGET, str(error))
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return HttpOutcome(None, elapsed(), AttemptError.TIMEOUT, "timed out")
        except aiohttp.ClientConnectorDNSError as error:
            return HttpOutcome(None, elapsed(), _classify_dns(error), str(error))
        except (aiohttp.ClientSSLError, ssl.SSLError) as error:
            return HttpOutcome(None, elapsed(), AttemptError.TLS, str(error))
        except (aiohttp.ClientError, OSError) as error:
            if _caused_by(error, ForbiddenTargetError):
                return HttpOutcome(None, elapsed(), AttemptError.REFUSED_TARGET, str(error))
            return HttpOutcome(None, elapsed(), AttemptError.CONNECT, _connect_message(error))


@functools.lru_cache(maxsize=4096)
def _parsed(url: str) -> tuple[URL | str, str]:
    """The URL as aiohttp takes it, and its host: parsed once per subscription URL, not per
    attempt (the host alone cost a few µs each time). A URL yarl refuses stays a string, for
    aiohttp to refuse as it always did (a connect error)."""
    host = urlsplit(url).hostname or ""
    try:
        return URL(url), host
    except ValueError:
        return url, host


def _connect_message(error: BaseException) -> str:
    # aiohttp's own text names its TLS context even for http:// ("… ssl:default [Connection
    # refused]"): say where and why only.
    if isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
        reason = os.strerror(cause.errno) if cause.errno else str(cause)
        return f"cannot connect to {error.host}:{error.port}: {reason}"
    return str(error) or type(error).__name__


def with_custom_headers(
    headers: Mapping[str, str], custom_headers: Mapping[str, str]
) -> dict[str, str]:
    """`headers` plus the custom ones that neither repeat one of them (ignoring case) nor are
    reserved; validation refused those at create/update already, this holds whatever is stored."""
    taken = {name.lower() for name in headers}
    merged = {
        name: value
        for name, value in custom_headers.items()
        if name.lower() not in taken and not is_reserved_header(name)
    }
    merged.update(headers)
    return merged


def _classify_dns(error: BaseException) -> AttemptError:
    return (
        AttemptError.REFUSED_TARGET if _caused_by(error, ForbiddenTargetError) else AttemptError.DNS
    )


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read the rest of a small body so the connection can be reused; close it otherwise."""
    drained = 0
    while drained <= DRAIN_LIMIT:
        chunk = await response.content.readany()
        if not chunk:
            return
        drained += len(chunk)
    response.close()
