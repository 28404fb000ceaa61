"""The live feed: server-sent events whose ids are result row ids.

A browser that reconnects sends ``Last-Event-ID`` and gets exactly the rows it missed; a
new page starts ``after`` the newest row it rendered. Each event carries the rendered table
row (htmx's SSE extension swaps it in), and a keep-alive comment goes out every 15 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from controlroom.auth import Identity
from controlroom.db.schema import Result
from controlroom.web.context import ConsoleContext
from controlroom.web.queries import ResultFilter, latest_result_id, search_results
from controlroom.web.security import require
from controlroom.web.templating import templates

router = APIRouter()

#: Longest time between two database polls when no in-process ingester notifies, seconds.
POLL_S = 0.5
KEEPALIVE_S = 15.0
BATCH = 200


def _start(request: Request, after: int | None, ctx: ConsoleContext) -> int:
    header = request.headers.get("last-event-id")
    if header and header.strip().isdigit():
        return int(header)
    if after is not None:
        return after
    with ctx.db.session() as s:
        return latest_result_id(s)


def render_row(r: Result) -> str:
    """The live-feed table row of one result, on one line per SSE data field."""
    return templates.get_template("_result_row.html").render(r=r)


def sse_event(event: str, ident: int, html: str) -> str:
    """One SSE message (multi-line data gets one ``data:`` field per line)."""
    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"id: {ident}\nevent: {event}\n{data}\n\n"


@router.get("/events/results")
async def result_events(
    request: Request, after: int | None = None, who: Identity = Depends(require("viewer"))
) -> StreamingResponse:
    """New results as they are stored (``event: result``, ``id`` = row id)."""
    ctx: ConsoleContext = request.app.state.ctx
    last = await asyncio.to_thread(_start, request, after, ctx)

    def fetch(after_id: int) -> list[tuple[int, str]]:
        with ctx.db.session() as s:
            rows = search_results(s, ResultFilter(), limit=BATCH, after_id=after_id)
            return [(r.id, render_row(r)) for r in rows]

    async def stream() -> AsyncIterator[str]:
        nonlocal last
        yield "retry: 1000\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            rows = await asyncio.to_thread(fetch, last)
            for ident, html in rows:
                yield sse_event("result", ident, html)
                last = ident
            if rows:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since > KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            await ctx.notifier.wait(POLL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
