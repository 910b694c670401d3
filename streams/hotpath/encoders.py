"""The hot path's outputs, encoded from integers: final candles and marks (and the
analysis' indicator snapshots, one for every candle it folds).

``AvroCodec.encode(candle_record(...))`` builds a typed record (Decimals, datetimes, an
Envelope), checks it and hands it to fastavro: about 200 us a record here. With thousands
of symbols a 1-second window closes and a mark is sent about once per trade, so that was the
hot path's largest cost. These encoders write the same bytes (tests compare them with the
codec's) from the fold's integers through ``RawWriter``, which refuses what the contract
cannot hold (an amount summed past decimal(38, 18)). What else the records' rules ask is
true by construction: they are made from trades that passed the Trade rules.
"""

from __future__ import annotations

from decimal import Context, Inexact, Rounded

from domain.bars import round_units
from domain.candles import UNITS, ClosedCandle, close_time_us, taker_buy_quote_units
from domain.clock import to_micros
from domain.marks import PRODUCER as MARK_PRODUCER
from domain.marks import MarkSlice, mark_id
from schemas.files import latest
from schemas.records import Candle, Event, IndicatorSnapshot, Mark, Priority
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
    """Marks, as the codec encodes their Mark records (``domain.marks.mark_record``)."""

    FIELDS = (*_ENVELOPE, "symbol", "price", "size", "trade_count", "last_trade_id", "slice_start")

    def __init__(self, codec: AvroCodec) -> None:
        self.writer = _writer(codec, Mark, self.FIELDS, MARK_PRODUCER,
                              ("envelope.ingest_time", "symbol", "slice_start"))

    def encode(self, mark: MarkSlice, ingest_us: int) -> bytes:
        """Wire-format bytes of the mark's record; InvalidValue if its size does not fit."""
        return self.writer.encode((mark_id(mark), mark.time_us, ingest_us, mark.symbol, mark.price, mark.size,
                                   mark.count, mark.trade_id, mark.slice_start_us))


class SnapshotEncoder:
    """Indicator snapshots (``domain.analysis.snapshot_record``), as the codec encodes them:
    ~4 times faster. A snapshot this writer does not cover (another producer or envelope,
    a close the contract cannot hold) goes through the codec, which names what is wrong."""

    FIELDS = (*_ENVELOPE, "envelope.correlation_id", "envelope.causation_id", "symbol", "interval", "candle_id",
              "candle_end", "close", "ema_fast", "ema_slow", "rsi", "atr", "realised_volatility", "volume_zscore",
              "anomaly_ids")

    def __init__(self, codec: AvroCodec, producer: str) -> None:
        self.codec = codec
        self.usual = ("IndicatorSnapshot", producer, IndicatorSnapshot.SCHEMA_VERSION, Priority.NORMAL, 0)
        self.writer = _writer(codec, IndicatorSnapshot, self.FIELDS, producer, (
            "envelope.event_time", "envelope.ingest_time", "symbol", "interval", "candle_end"))

    def encode(self, snapshot: IndicatorSnapshot) -> bytes:
        """Wire-format bytes of the snapshot's record; the codec's EncodeError if it cannot be encoded."""
        envelope = snapshot.envelope
        if (envelope.event_type, envelope.producer, envelope.schema_version, envelope.priority,
                envelope.retry_count) != self.usual:
            return self.codec.encode(snapshot)
        try:
            close = snapshot.close.scaleb(18, _EXACT)  # decimal(38, 18): its unscaled integer
            units = int(close)
            if units != close:
                raise ArithmeticError("more than 18 decimal places")
            data = self.writer.encode((
                envelope.event_id, to_micros(envelope.event_time), to_micros(envelope.ingest_time),
                envelope.correlation_id, envelope.causation_id, snapshot.symbol, snapshot.interval,
                snapshot.candle_id, to_micros(snapshot.candle_end), units, snapshot.ema_fast, snapshot.ema_slow,
                snapshot.rsi, snapshot.atr, snapshot.realised_volatility, snapshot.volume_zscore,
                snapshot.anomaly_ids))
        except (ArithmeticError, TypeError, ValueError, TickTideError):  # NaN, a float as text, ...
            return self.codec.encode(snapshot)
        return data if len(data) <= self.codec.max_record_bytes else self.codec.encode(snapshot)
