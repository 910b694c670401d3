"""A user's own agent with a bug: it raises outside any dead-letter guard when a headline
says so. The worker must report it (FAILED, /ready 503) and keep everything else running."""

from __future__ import annotations

from faust import StreamT

from schemas.records import News
from streams.faust.context import WorkerApp

AGENT = "plugin.faulty"
TRIGGER = "crash the faulty agent"


def install(app: WorkerApp) -> None:
    """Register the faulty agent on market.news."""

    @app.agent(app.typed_topics["market.news"].faust, name=AGENT)
    async def faulty(stream: StreamT[bytes]) -> None:
        async for value in stream:
            news = app.codec.decode_as(value, News)
            if TRIGGER in news.headline:
                raise RuntimeError(f"bug triggered by {news.envelope.event_id}")
