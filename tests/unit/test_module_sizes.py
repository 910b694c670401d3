"""Modules and packages stay small (issue 14): no production module over MAX_LINES lines and
no package with more than MAX_MODULES modules, apart from the known exceptions below, each
with its reason. An exception that no longer exceeds the limit must leave the list."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = ("schemas", "domain", "streams", "tables", "agents")
MAX_LINES = 350
MAX_MODULES = 8
"""Modules of one package, not counting its __init__.py and __main__.py."""

LONG_MODULES: dict[str, str] = {}
LARGE_PACKAGES: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(p for top in PRODUCTION for p in (REPO / top).rglob("*.py") if "__pycache__" not in p.parts)


def _packages() -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in _modules():
        package = path.parent.relative_to(REPO).as_posix()
        counts.setdefault(package, 0)
        if path.name not in ("__init__.py", "__main__.py"):
            counts[package] += 1
    return counts


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_longer_than_the_limit() -> None:
    long = {p.relative_to(REPO).as_posix(): _lines(p) for p in _modules() if _lines(p) > MAX_LINES}
    unexpected = {path: n for path, n in long.items() if path not in LONG_MODULES}
    assert not unexpected, f"modules over {MAX_LINES} lines (split them): {unexpected}"
    stale = set(LONG_MODULES) - set(long)
    assert not stale, f"no longer over {MAX_LINES} lines, remove from LONG_MODULES: {sorted(stale)}"


def test_no_package_holds_more_than_the_limit_of_modules() -> None:
    large = {package: n for package, n in _packages().items() if n > MAX_MODULES}
    unexpected = {package: n for package, n in large.items() if package not in LARGE_PACKAGES}
    assert not unexpected, f"packages over {MAX_MODULES} modules (group them in sub-packages): {unexpected}"
    stale = set(LARGE_PACKAGES) - set(large)
    assert not stale, f"no longer over {MAX_MODULES} modules, remove from LARGE_PACKAGES: {sorted(stale)}"


def test_the_checks_see_the_code() -> None:
    """A wrong root would find nothing and pass everything."""
    packages = _packages()
    assert packages["streams/cli"] >= 1 and packages["schemas/records"] >= 1 and len(_modules()) > 100
