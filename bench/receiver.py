"""The benchmark's HTTP receiver, run as its own process so it has its own core budget.

POST /<name>: record (webhook-id, arrival time) and answer 200; a name starting with "hang" sleeps
for ?seconds (default 30) first. GET /stats/<name>: JSON {"count", "arrivals": {id: time}}.
POST /reset: forget everything."""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web

arrivals: dict[str, dict[str, float]] = {}
counts: dict[str, int] = {}


async def hook(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await request.read()
    now = time.time()
    counts[name] = counts.get(name, 0) + 1
    event_id = request.headers.get("webhook-id", "")
    arrivals.setdefault(name, {}).setdefault(event_id, now)
    if name.startswith("hang"):
        await asyncio.sleep(float(request.query.get("seconds", "30")))
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    with_arrivals = request.query.get("arrivals") == "1"
    body: dict[str, object] = {"count": counts.get(name, 0), "unique": len(arrivals.get(name, {}))}
    if with_arrivals:
        body["arrivals"] = arrivals.get(name, {})
    return web.json_response(body)


async def reset(_: web.Request) -> web.Response:
    arrivals.clear()
    counts.clear()
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app.router.add_post("/reset", reset)
    app.router.add_get("/stats/{name}", stats)
    app.router.add_post("/{name}", hook)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
