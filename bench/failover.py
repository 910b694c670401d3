"""Failover time with and without standby replicas: `python -m bench.failover [--runs N]`.

Two workers share the group on a fresh embedded broker while trades flow; the one that
owns more table state is SIGKILLed. Measured from the kill: until the survivor owns every
market.trades partition and answers /ready 200 (tables recovered), and until it has
processed more trades. Session timeout 6 s (as in the tests): the group notices a killed
member only after it; standby replicas shorten the table recovery that follows.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path

from streams.devstack.broker import EmbeddedBroker, free_port
from streams.ingest import synthetic_trades
from streams.kafka.admin import create_topics
from streams.kafka.producer import EventProducer
from tests.harness import WorkerProcess, http_json, settings_for, start_worker
from tests.integration.test_exactness import START, SYMBOLS

AGENT = "market.trades"


def _shares(worker: WorkerProcess) -> int:
    return sum(p.startswith(f"{AGENT}[") for p in worker.health()["assigned_partitions"])


def one_run(standbys: int, trades: int, workdir: Path) -> tuple[float, float]:
    """(seconds to ready with every partition, seconds to progress) after the kill."""
    broker = EmbeddedBroker(log_file=workdir / "broker.log")
    broker.start()
    try:
        settings = settings_for(broker, workdir, standby_replicas=standbys)
        create_topics(settings)
        workers = [start_worker(settings.model_copy(update={"data_dir": workdir / f"d{n}", "web_port": free_port()}),
                                workdir / f"w{n}.log") for n in (1, 2)]
        stop = threading.Event()
        feed = iter(synthetic_trades(SYMBOLS, seed=7, start=START, rate=400))

        def produce() -> None:
            with EventProducer(settings) as producer:
                for trade in islice(feed, trades):
                    producer.send("market.trades", trade)
                while not stop.is_set():  # a trickle, so progress after the kill shows
                    for trade in islice(feed, 50):
                        producer.send("market.trades", trade)
                    producer.flush()
                    time.sleep(0.1)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            for w in workers:
                w.wait_until(lambda h: h["agents"].get(AGENT, {}).get("processed", 0) > trades // 4, 180,
                             "both workers to build table state")
            if standbys:
                time.sleep(5)  # let the standbys catch up with the changelogs
            victim, survivor = sorted(workers, key=_shares)[::-1]
            before = survivor.processed(AGENT)
            killed = time.monotonic()
            victim.stop(signal.SIGKILL)
            ready_at = progress_at = None
            while ready_at is None or progress_at is None:
                if time.monotonic() - killed > 180:
                    raise RuntimeError(f"no failover within 180 s:\n{survivor.tail()}")
                try:
                    if ready_at is None and _shares(survivor) == 4 and \
                            http_json(f"{survivor.url}/ready")[0] == 200:
                        ready_at = time.monotonic() - killed
                    if ready_at is not None and progress_at is None and survivor.processed(AGENT) > before:
                        progress_at = time.monotonic() - killed
                except OSError:
                    pass
                time.sleep(0.1)
            return ready_at, progress_at
        finally:
            stop.set()
            for w in workers:
                w.stop()
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--trades", type=int, default=60_000)
    args = parser.parse_args()
    for standbys in (0, 1):
        results = []
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(one_run(standbys, args.trades, Path(tmp)))
            print(f"standby_replicas={standbys} run {run + 1}: ready {results[-1][0]:.1f} s, "
                  f"progress {results[-1][1]:.1f} s", flush=True)
        print(f"standby_replicas={standbys}: median ready {statistics.median(r[0] for r in results):.1f} s, "
              f"median progress {statistics.median(r[1] for r in results):.1f} s", flush=True)


if __name__ == "__main__":
    main()
