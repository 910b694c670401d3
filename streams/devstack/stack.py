"""`make run`: broker + topics + one worker + a feed, stopped together.

The feed is the synthetic one (trades and headlines at "now"), a file of recorded trades
(sent once, alone: no synthetic feed moves the symbols' watermarks past its times, so its
own candles show), or none (you produce).

Children are started with PR_SET_PDEATHSIG, so none outlives this process, and they are
stopped in reverse order (feed, worker, broker) on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streams.devstack.broker import EmbeddedBroker, die_with_parent, free_port, port_is_free
from streams.engine import TANSU, refuse_unsupported_guarantee
from streams.kafka.admin import create_topics
from streams.settings import Settings

DEFAULT_PORT = 9092
SYNTHETIC = "synthetic"
NO_FEED = "none"


@dataclass
class DevStack:
    """The embedded default deployment on one machine."""

    settings: Settings
    broker_port: int = DEFAULT_PORT
    symbols: str = "BTCUSDT,ETHUSDT"
    rate: float = 200.0
    news_rate: float = 1 / 30  # an occasional synthetic headline, so enrichment shows
    feed: str = SYNTHETIC
    """SYNTHETIC, NO_FEED, or the path of a trades file"""
    feed_args: tuple[str, ...] = ()
    """``produce`` options of a file feed: --format F [--symbol S]"""
    broker: EmbeddedBroker | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    on_feed_sent: Callable[[], None] | None = None
    """Called when a file feed has sent the whole file (the stack keeps running)"""

    def start(self) -> str:
        """Start everything; the broker's bootstrap address."""
        refuse_unsupported_guarantee(self.settings.processing_guarantee, TANSU)
        wanted = self.broker_port
        port = wanted if wanted and port_is_free(wanted) else free_port()
        log_dir = self.settings.data_dir
        self.broker = EmbeddedBroker(port, log_file=log_dir / "broker.log")
        bootstrap = self.broker.start()
        settings = self.settings.model_copy(update={"broker": bootstrap})
        create_topics(settings)
        env = {**os.environ, "TICKTIDE_BROKER": bootstrap, "TICKTIDE_BROKER_FLAVOR": "tansu",
               "TICKTIDE_SESSION_TIMEOUT_S": "6", "TICKTIDE_WEB_PORT": str(settings.web_port),
               "TICKTIDE_DATA_DIR": str(log_dir / "worker-0")}
        if self.feed not in (SYNTHETIC, NO_FEED):  # a recording ends: its last windows close once it is quiet
            env["TICKTIDE_IDLE_CLOSE_ALL"] = "true"
        self._spawn("worker", ["worker"], env, None)
        if self.feed == SYNTHETIC:
            self._spawn("feed", ["produce", "market.trades", "--synthetic", "--symbols", self.symbols,
                                 "--rate", str(self.rate), "--duration", "0"], env,
                        log_dir / "feed.log")
            self._spawn("news", ["produce", "market.news", "--synthetic", "--symbols", self.symbols,
                                 "--rate", str(self.news_rate), "--duration", "0"], env,
                        log_dir / "news.log")
        elif self.feed != NO_FEED:
            self._spawn("feed", ["produce", "market.trades", "--file", self.feed, *self.feed_args], env,
                        log_dir / "feed.log")
        return bootstrap

    @property
    def feed_log(self) -> Path:
        """Where the feed's output goes."""
        return self.settings.data_dir / "feed.log"

    def _spawn(self, name: str, args: list[str], env: dict[str, str], log: Path | None) -> None:
        out = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = log.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args], env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT if out else None,
            preexec_fn=die_with_parent, start_new_session=True,
        )
        self.children.append((name, process))

    def wait(self) -> str:
        """Block until Ctrl-C/SIGTERM or a child exits; what ended it."""
        done = threading.Event()
        reason: list[str] = []

        def on_signal(signum: int, _frame: object) -> None:
            reason.append(signal.Signals(signum).name)
            done.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, on_signal)
        def watch(name: str, process: subprocess.Popen[bytes]) -> None:
            process.wait()
            if name == "feed" and self.feed not in (SYNTHETIC, NO_FEED) and process.returncode == 0:
                if self.on_feed_sent is not None:  # a file feed is done: the stack keeps running
                    self.on_feed_sent()
                return
            reason.append(f"{name} exited with code {process.returncode}")
            done.set()

        for name, process in self.children:
            threading.Thread(target=watch, args=(name, process), daemon=True).start()
        done.wait()
        return reason[0]

    def stop(self, timeout: float = 15.0) -> None:
        """Stop children in reverse order, then the broker."""
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.children.clear()
        if self.broker is not None:
            self.broker.stop()
