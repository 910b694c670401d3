"""`ticktide broker`: the embedded broker in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from streams.devstack.broker import EmbeddedBroker, free_port


def broker(
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one")] = 9092,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) until Ctrl-C/SIGTERM."""
    embedded = EmbeddedBroker(port or free_port(host), host)
    embedded.start()
    typer.echo(f"broker ready at {embedded.bootstrap}  (export TICKTIDE_BROKER={embedded.bootstrap})")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def watch() -> None:
        embedded.wait()
        stop.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stop.wait()
    embedded.stop()
    typer.echo("broker stopped")
