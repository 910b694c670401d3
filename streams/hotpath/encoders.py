"""The hot path's outputs, encoded from integers: final candles and marks (and the
analysis' outputs: a snapshot for every candle it folds, and its anomalies).

``AvroCodec.encode(candle_record(...))`` builds a typed record (Decimals, datetimes, an
Envelope), checks it and hands it to fastavro: about 200 us a record here. With thousands
of symbols a 1-second window closes and a mark is sent about once per trade, so that was the
hot path's largest cost. These encoders write the same bytes (tests compare them with the
codec's) from the fold's integers through ``RawWriter``, which refuses what the contract
cannot hold (an amount summed past decimal(38, 18)). What else the records' rules ask is
true by construction: they are made from trades that passed the Trade rules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Context, Inexact, Rounded
from typing import Any

from domain.clock import to_micros
from domain.market.bars import round_units
from domain.market.candles import UNITS, ClosedCandle, close_time_us, taker_buy_quote_units
from domain.market.marks import PRODUCER as MARK_PRODUCER
from domain.market.marks import MarkSlice, mark_id
from schemas.files import latest
from schemas.records import Anomaly, Candle, Event, IndicatorSnapshot, Mark, Priority
from streams.errors import TickTideError
from streams.hotpath.avro_writer import RawWriter
from streams.kafka.codec import AvroCodec


def _writer(codec: AvroCodec, cls: type[Event], fields: tuple[str, ...], producer: str,
            repeating: tuple[str, ...]) -> RawWriter:
    constants = {"envelope.event_type": cls.__name__, "envelope.producer": producer,
                 "envelope.schema_version": cls.SCHEMA_VERSION, "envelope.correlation_id": None,
                 "envelope.causation_id": None, "envelope.priority": Priority.NORMAL.value,
                 "envelope.retry_count": 0}
    return RawWriter(codec.header_of(cls), latest(cls.AVRO_NAME).schema, fields,
                     {path: value for path, value in constants.items() if path not in fields}, repeating)


_ENVELOPE = ("envelope.event_id", "envelope.event_time", "envelope.ingest_time")
_EXACT = Context(prec=100, traps=[Inexact, Rounded])
"""Decimal arithmetic that raises rather than rounds."""


class CandleEncoder:
    """Final candles, as the codec encodes their Candle records."""

    FIELDS = (*_ENVELOPE, "symbol", "interval", "window_start", "window_end", "open", "high", "low", "close",
              "volume", "quote_volume", "vwap", "trade_count", "buy_volume", "sell_volume", "first_trade_id",
              "last_trade_id", "taker_buy_quote_volume", "close_time")

    def __init__(self, codec: AvroCodec, producer: str) -> None:
        # thousands of symbols close the same windows, in one send with one ingest time
        self.writer = _writer(codec, Candle, self.FIELDS, producer, (
            "envelope.event_time", "envelope.ingest_time", "symbol", "interval", "window_start", "window_end",
            "close_time"))

    def encode(self, closed: ClosedCandle, ingest_us: int) -> bytes:
        """Wire-format bytes of the candle's record; InvalidValue if an amount does not fit."""
        bar = closed.bar
        return self.writer.encode((
            closed.candle_id, bar.end_us, ingest_us, closed.symbol, closed.interval, bar.start_us, bar.end_us,
            bar.open, bar.high, bar.low, bar.close, bar.volume, round_units(bar.quote, UNITS), bar.vwap, bar.count,
            bar.buy_volume, bar.sell_volume, bar.first_id, bar.last_id, taker_buy_quote_units(bar),
            close_time_us(bar)))


class MarkEncoder:
    """Marks, as the codec encodes their Mark records (``domain.market.marks.mark_record``)."""

    FIELDS = (*_ENVELOPE, "symbol", "price", "size", "trade_count", "last_trade_id", "slice_start")

    def __init__(self, codec: AvroCodec) -> None:
        self.writer = _writer(codec, Mark, self.FIELDS, MARK_PRODUCER,
                              ("envelope.ingest_time", "symbol", "slice_start"))

    def encode(self, mark: MarkSlice, ingest_us: int) -> bytes:
        """Wire-format bytes of the mark's record; InvalidValue if its size does not fit."""
        return self.writer.encode((mark_id(mark), mark.time_us, ingest_us, mark.symbol, mark.price, mark.size,
                                   mark.count, mark.trade_id, mark.slice_start_us))


class DerivedEncoder(ABC):
    """Records the analysis derives from a candle, as the codec encodes them, ~4 times faster:
    one snapshot for every candle it folds, and its anomalies. A record this writer does not
    cover (another producer or envelope, a decimal the exact context cannot scale) goes
    through the codec, which gives its bytes or names what is wrong."""

    FIELDS: tuple[str, ...] = (*_ENVELOPE, "envelope.correlation_id", "envelope.causation_id")
    REPEATING: tuple[str, ...] = ("envelope.event_time", "envelope.ingest_time", "symbol", "interval")

    def __init__(self, codec: AvroCodec, cls: type[Event], producer: str) -> None:
        self.codec = codec
        self.usual = (cls.__name__, producer, cls.SCHEMA_VERSION, Priority.NORMAL, 0)
        self.writer = _writer(codec, cls, self.FIELDS, producer, self.REPEATING)

    @abstractmethod
    def values(self, record: Any) -> tuple[Any, ...]:
        """The record's own fields' values, in ``FIELDS`` order after the envelope's."""

    def encode(self, record: Any) -> bytes:
        """Wire-format bytes of the record; the codec's EncodeError if it cannot be encoded."""
        envelope = record.envelope
        if (envelope.event_type, envelope.producer, envelope.schema_version, envelope.priority,
                envelope.retry_count) != self.usual:
            return self.codec.encode(record)
        try:
            data = self.writer.encode((
                envelope.event_id, to_micros(envelope.event_time), to_micros(envelope.ingest_time),
                envelope.correlation_id, envelope.causation_id, *self.values(record)))
        except (ArithmeticError, TypeError, ValueError, TickTideError):  # NaN, a float as text, ...
            return self.codec.encode(record)
        return data if len(data) <= self.codec.max_record_bytes else self.codec.encode(record)


class SnapshotEncoder(DerivedEncoder):
    """Indicator snapshots (``domain.analysis.series.snapshot_record``)."""

    FIELDS = (*DerivedEncoder.FIELDS, "symbol", "interval", "candle_id", "candle_end", "close", "ema_fast",
              "ema_slow", "rsi", "atr", "realised_volatility", "volume_zscore", "anomaly_ids")
    REPEATING = (*DerivedEncoder.REPEATING, "candle_end")

    def __init__(self, codec: AvroCodec, producer: str) -> None:
        super().__init__(codec, IndicatorSnapshot, producer)

    def values(self, record: IndicatorSnapshot) -> tuple[Any, ...]:
        close = record.close.scaleb(18, _EXACT)  # decimal(38, 18): its unscaled integer
        units = int(close)
        if units != close:
            raise ArithmeticError("more than 18 decimal places")
        return (record.symbol, record.interval, record.candle_id, to_micros(record.candle_end), units,
                record.ema_fast, record.ema_slow, record.rsi, record.atr, record.realised_volatility,
                record.volume_zscore, record.anomaly_ids)


class AnomalyEncoder(DerivedEncoder):
    """Anomalies (``domain.analysis.series.anomaly_record``)."""

    FIELDS = (*DerivedEncoder.FIELDS, "symbol", "interval", "rule", "value", "threshold", "candle_id",
              "description")

    def __init__(self, codec: AvroCodec, producer: str) -> None:
        super().__init__(codec, Anomaly, producer)

    def values(self, record: Anomaly) -> tuple[Any, ...]:
        return (record.symbol, record.interval, record.rule, record.value, record.threshold, record.candle_id,
                record.description)
