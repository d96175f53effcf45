"""What a web page in the caller's browser may not make the HTTP listener do.

The API serves no CORS, so no page of another site is a legitimate caller of a method that
changes something. A browser still *sends* a cross-site POST whose body is `text/plain` (no
preflight), and the listener reads any body as JSON: without this guard, any page a developer
opens could publish events, create subscriptions (with `--dev`, pointing at hosts on their
network) or open portal sessions on the open server of `make run` / `make dev`, which needs no
token. Browsers mark such requests (`Sec-Fetch-Site`, `Origin`); curl and the SDKs send neither.

DNS rebinding goes further: a page on a name the attacker later resolves to 127.0.0.1 is
same-origin with the listener, so it can also read the answers. Its requests still carry the
attacker's name in `Host`, so the open server answers only requests addressed to an IP address or
`localhost`. With tokens configured a rebound page has no token, and cookies are not sent to
the attacker's name, so any `Host` is served (a proxy may use one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

import grpc
from aiohttp import web
from aiohttp.typedefs import Middleware

from .status import RestError, rest_error

# A page of another site cannot read what these answer (no CORS), and they change nothing; a
# link to the portal in a mail (its login page) is such a cross-site GET.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def browser_guard(*, open_server: bool) -> Middleware:
    """An aiohttp middleware refusing cross-site browser requests that may change something,
    and on an open server requests addressed to a host name other than localhost
    (PERMISSION_DENIED, 403)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in SAFE_METHODS and _cross_site(request):
            raise _refused(
                "a request from another site's page is refused: this API serves no CORS "
                "(call it from a server, curl or the SDKs, or from the portal's own pages)"
            )
        if open_server and not _local_host(request.host):
            raise _refused(
                f"this server has no tokens, so it answers only requests addressed to an IP "
                f"address or localhost, not {request.host!r} (a guard against DNS rebinding); "
                f"configure [[tokens]] to serve other names"
            )
        return await handler(request)

    return guard


def _cross_site(request: web.Request) -> bool:
    # Sec-Fetch-Site is the browser's own verdict, whatever a proxy did to Host or the scheme.
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    # Older browsers: the pages' own requests send no Origin (GET) or "null" (Referrer-Policy:
    # no-referrer).
    origin = request.headers.get("Origin", "null")
    return origin != "null" and origin != f"{request.scheme}://{request.host}"


def _local_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _refused(message: str) -> RestError:
    return rest_error(grpc.StatusCode.PERMISSION_DENIED, message)
