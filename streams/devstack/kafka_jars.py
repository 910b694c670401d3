"""Java and the Apache Kafka jars: the version pinned in deploy/kafka/pom.xml, resolved by
Maven (``mvn dependency:copy-dependencies``) on first use into ~/.cache/ticktide, and
reused after. Parallel test processes resolve once (a file lock)."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

from streams.errors import BrokerError

POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


def kafka_version(pom: Path = POM) -> str:
    """The pinned Kafka version (``<kafka.version>`` in the build file)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not found:
        raise BrokerError(f"no <kafka.version> in {pom}")
    return found.group(1).strip()


def cache_root() -> Path:
    """~/.cache/ticktide (or $XDG_CACHE_HOME/ticktide)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ticktide"


def java_binary() -> str:
    """The ``java`` to run Kafka with; BrokerError naming what is missing."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() \
        else shutil.which("java")
    if not candidate:
        raise BrokerError("--engine kafka needs Java 17 or newer: no `java` on PATH (install openjdk-17-jre-headless)")
    return candidate


def jars_dir(pom: Path = POM) -> Path:
    """The directory of Kafka's jars, resolved through Maven the first time."""
    target = cache_root() / f"kafka-{kafka_version(pom)}" / "libs"
    done = target.parent / ".resolved"
    if done.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be resolving the same version
        if not done.exists():
            _resolve(pom, target)
            done.write_text(kafka_version(pom) + "\n")
    return target


def _resolve(pom: Path, target: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError(f"--engine kafka needs Maven (`mvn`) once to fetch Kafka {kafka_version(pom)}'s jars")
    if target.exists():
        shutil.rmtree(target)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
         f"-DoutputDirectory={target}", "-DincludeScope=runtime"],
        capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise BrokerError(f"Maven could not fetch Kafka's jars ({pom}): " + " | ".join(tail))


def classpath(pom: Path = POM) -> str:
    """The JVM class path of the Kafka broker."""
    return str(jars_dir(pom) / "*")
