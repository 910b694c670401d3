"""The input side of ``ticktide produce market.trades``: files and a synthetic feed as Trades.

Pure parsing and generation: no Kafka, no printing. ``read_trades`` streams a file row by
row as ``ParsedRow`` (a valid Trade) or ``RejectedRow`` (line, reason, raw text); a bad row
never raises and is never dropped. ``synthetic_trades`` is an endless simulated feed.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from streams.errors import InvalidInput
from streams.ingest.binance import parse_aggtrades_csv, parse_trades_csv, parse_ws
from streams.ingest.jsonl import parse_jsonl
from streams.ingest.parsed_rows import ParsedRow, RejectedRow, Row
from streams.ingest.synthetic import synthetic_trades
from streams.ingest.validate import trade_problems

__all__ = [
    "TRADE_FORMATS",
    "ParsedRow",
    "RejectedRow",
    "Row",
    "guess_file_format",
    "guess_format",
    "read_trades",
    "synthetic_trades",
    "trade_problems",
]

TRADE_FORMATS = ("binance-trades", "binance-aggtrades", "binance-ws", "jsonl")
"""Values of ``--format`` for ``produce market.trades``."""
CSV_FORMATS = ("binance-trades", "binance-aggtrades")

Parser = Callable[..., Iterator[Row]]
_PARSERS: dict[str, Parser] = {
    "binance-trades": parse_trades_csv,
    "binance-aggtrades": parse_aggtrades_csv,
    "binance-ws": parse_ws,
    "jsonl": parse_jsonl,
}
_GZIP_MAGIC = b"\x1f\x8b"
_DESCRIBED = {"binance-trades": "a Binance trades CSV", "binance-aggtrades": "a Binance aggTrades CSV",
              "binance-ws": "recorded Binance websocket messages", "jsonl": "JSON lines of our Trade schema"}


def guess_format(line: str) -> str | None:
    """The trade format a file's first line looks like; None if it is none of them."""
    text = line.strip()
    if text.startswith("{"):
        compact = text.replace(" ", "")
        return "binance-ws" if '"stream":' in compact or '"e":"trade"' in compact else "jsonl"
    fields = [f.strip().lower() for f in text.split(",")]
    if len(fields) < 6:
        return None
    if any("agg" in f or f == "first_trade_id" for f in fields):
        return "binance-aggtrades"
    if len(fields) in (7, 8) and fields[3].isdigit():  # aggTrades: 4th column is the first trade id
        return "binance-aggtrades"
    return "binance-trades"


def _first_line(path: Path) -> str:
    with _open_text(path) as lines:
        return next((line for line in lines if line.strip()), "")


def guess_file_format(path: Path) -> str | None:
    """The trade format a file's first line looks like (InvalidInput if it cannot be read)."""
    try:
        return guess_format(_first_line(path))
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


def _check_format(path: Path, fmt: str, symbol: str | None) -> None:
    """One clear error, with the --format to pass, for a file of another format (a CSV
    given as JSON lines would otherwise fail row by row)."""
    guess = guess_file_format(path)
    if guess is None or guess == fmt or {guess, fmt} == {"binance-trades", "binance-aggtrades"}:
        return  # nothing recognisable, or a CSV layout the parser itself tells apart by its header
    needs_symbol = " --symbol SYMBOL" if guess in CSV_FORMATS and symbol is None else ""
    raise InvalidInput(f"{path} looks like {_DESCRIBED[guess]}, not --format {fmt} "
                       f"({_DESCRIBED[fmt]}): pass --format {guess}{needs_symbol}")


def _is_gzip(path: Path) -> bool:
    if path.suffix.lower() == ".gz":
        return True
    with path.open("rb") as file:
        return file.read(2) == _GZIP_MAGIC


def _open_text(path: Path) -> IO[str]:
    """The file as text lines; gzip by suffix (or magic bytes); undecodable bytes kept as
    U+FFFD so such a row is rejected rather than the whole file failing."""
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
    return path.open("r", encoding="utf-8-sig", errors="replace")


def _stream(path: Path, parse: Callable[[Iterable[str]], Iterator[Row]]) -> Iterator[Row]:
    try:
        with _open_text(path) as lines:
            yield from parse(lines)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


def read_trades(path: Path, fmt: str, *, symbol: str | None = None, venue: str = "binance",
                producer: str = "cli.produce") -> Iterator[ParsedRow | RejectedRow]:
    """Stream the rows of a trades file in one of ``TRADE_FORMATS``.

    Checks the arguments and the file before returning (InvalidInput with a one-line
    message); the file is then read lazily, one line at a time. ``symbol`` is upper-cased;
    CSV formats need it (the files do not name their symbol), the message formats reject
    rows of any other symbol when it is given.
    """
    path = Path(path)
    if fmt not in _PARSERS:
        raise InvalidInput(f"unknown format {fmt!r}: expected one of {', '.join(TRADE_FORMATS)}")
    symbol = symbol.strip().upper() if symbol and symbol.strip() else None
    if not venue.strip():
        raise InvalidInput("--venue must not be empty")
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    if not path.is_file():
        raise InvalidInput(f"not a file: {path}")
    try:
        _is_gzip(path)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    _check_format(path, fmt, symbol)
    if fmt in CSV_FORMATS and symbol is None:
        raise InvalidInput(f"--symbol is required for {fmt} files")

    def parse(lines: Iterable[str]) -> Iterator[Row]:
        return _PARSERS[fmt](lines, symbol=symbol, venue=venue, producer=producer)

    return _stream(path, parse)
