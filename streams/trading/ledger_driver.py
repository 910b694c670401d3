"""The paper ledger's orchestration: which state an input is folded into, when the account's
row is written, what a worker that takes an account over folds again, and when an idle
account is asked to expire its orders.

The fold itself is pure (``domain.trading.account``, driven by ``domain.fold.step``). Around
it, per account:

* the state is held in memory between row writes, and a row is read once until partitions
  move (with thousands of symbols a row holds ~10,000 marks: decoding it for every input took
  half of the worker's time);
* the events an input emits reach the broker before anything else happens, and the row is
  written after them, so a row is never ahead of its events;
* an input that emits nothing is written at most every ``row_interval_s``, or less often
  when writing the row would take over ``ROW_WRITE_SHARE`` of the time; a worker that takes
  the account over folds again what the row does not hold (``catch_up``), with the same ids;
* a gap in what Faust hands over (it may hand records from a stale position after a
  rebalance, then seek on) makes the driver forget its memory and fold on from the rows.

The I/O is behind ``LedgerPorts`` (the worker's tables/trading.py, tests' in-memory one), so
all of this is unit-tested in-process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from domain.fold import step
from domain.trading.account import INPUT_TYPES, Account, Input, Patience, idle_expiry_time
from domain.trading.orders import TradingConfig
from schemas.records import Event
from streams.errors import DecodeError, InvalidValue

log = logging.getLogger(__name__)

ROW_WRITE_SHARE = 0.01
"""The most of the worker's time that writing rows for inputs that emit nothing may take. A
row holding thousands of symbols' marks takes ~0.2 s to write: written every second, it held
the event loop (and the candle fold in it) that long every second; now about every 20 s."""

Decide = Callable[[Account, Input], tuple[Account, list[Event]]]


class LedgerPorts(Protocol):
    """What the ledger driver reads and writes."""

    def row(self, account: str) -> Account:
        """The account as its row has it (a new account: its initial cash)."""

    async def write(self, account: str, state: Account) -> float:
        """Write the account's row; the seconds that took (the loop's turns left out)."""

    async def publish(self, account: str, events: Sequence[Event]) -> None:
        """Send the events, all or none, and wait until the broker has them."""

    async def inputs(self, account: str, partition: int, start: int, end: int) -> list[tuple[int, bytes | None]]:
        """The account's trading.commands records in [start, end) of a partition: (offset, value)."""

    def decode(self, value: bytes | None) -> Event:
        """A record's event, checked (DecodeError or InvalidValue otherwise)."""

    def accounts(self) -> Iterable[str]:
        """Every account with a row (a snapshot: rows may be read while it is iterated)."""

    def caught_up(self, inputs: int) -> None:
        """Count the inputs folded again after a row."""


class LedgerDriver:
    """Folds trading.commands into the accounts of the partitions this worker owns."""

    def __init__(self, decide: Decide, ports: LedgerPorts, config: TradingConfig, patience: Patience,
                 row_interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.decide = decide
        self.ports = ports
        self.config = config
        self.patience = patience
        self.row_interval_s = row_interval_s
        self.clock = clock
        self.started = clock()
        self.accounts: dict[str, Account] = {}  # ahead of their rows by what emitted nothing
        self.rows_read: dict[str, Account] = {}  # as their rows had them, not folded here since
        self.handed_through: dict[int, int] = {}  # partition -> the last offset Faust handed over
        self.written_at: dict[str, float] = {}  # when this worker last wrote the account's row
        self.row_write_s: dict[str, float] = {}  # how long the last write of its row took
        self.applied_at: dict[str, float] = {}  # when it last applied an input
        self.advanced_at: dict[str, float] = {}  # when its event time last moved on (or began to wait)

    def forget(self) -> None:
        """Partitions move (another worker may fold these accounts on), or Faust skipped
        records: read the rows again, and fold on from them."""
        self.accounts.clear()
        self.rows_read.clear()
        self.handed_through.clear()

    def handed(self, partition: int, offset: int) -> None:
        """Faust handed over the record at ``offset``: forget the memory if it skipped some."""
        last = self.handed_through.get(partition, offset - 1)
        if offset > last + 1:
            log.info("ledger: trading.commands[%d] %d..%d not handed over here: folding on from the rows",
                     partition, last + 1, offset - 1)
            self.forget()
        self.handed_through[partition] = max(offset, last)

    def state(self, account: str) -> Account:
        """The account as this worker holds it, else as its row has it."""
        state = self.accounts.get(account) or self.rows_read.get(account)
        if state is None:
            state = self.rows_read[account] = self.ports.row(account)
        return state

    async def on_input(self, account: str, record: Input, partition: int, offset: int) -> None:
        """Fold one input (read at ``partition``/``offset``) into its account: publish what it
        decided, then write the row if it is due."""
        state = self.state(account)
        self.rows_read.pop(account, None)  # a failure below: the next input reads the row again
        if state is not self.accounts.get(account):  # its row's: fold on what the row does not hold
            state = await self.catch_up(account, state, partition, offset)
            self.written_at.pop(account, None)  # write what it now holds with this input
        before, waited, through, held = state.applied, state.waiting(), state.through_us, len(state.held)
        self.accounts.pop(account, None)  # a failure below: the next input starts again from the row
        state, emitted = step(self.decide, state, record, partition, offset)
        if state.applied != before:
            await self.ports.publish(account, emitted)
        self.accounts[account] = state
        self.rows_read.pop(account, None)  # read meanwhile (the timer) or before: memory is ahead
        if state.applied == before:
            return
        now = self.clock()
        self.applied_at[account] = now
        if state.through_us != through or not waited:
            self.advanced_at[account] = now
        # The first input this worker folds is written at once (the row then says where it
        # began), and so is one that emitted events or changed what waits.
        last = self.written_at.get(account)
        wait_s = max(self.row_interval_s, self.row_write_s.get(account, 0.0) / ROW_WRITE_SHARE)
        if emitted or len(state.held) != held or last is None or now - last >= wait_s:
            self.row_write_s[account] = await self.ports.write(account, state)
            self.written_at[account] = self.clock()

    async def catch_up(self, account: str, state: Account, partition: int, offset: int) -> Account:
        """Fold again this account's inputs after its row's position and before ``offset``
        (a worker that stopped may have applied, and committed, inputs its row does not
        hold), publishing what they decide again: the same ids as before, if any was sent."""
        start = state.applied.offset + 1
        if state.applied.partition != partition or start >= offset:
            return state
        records = await self.ports.inputs(account, partition, start, offset)
        for record_offset, value in records:
            try:  # what failed before was dead-lettered then
                record = self.ports.decode(value)
                if isinstance(record, INPUT_TYPES):
                    state, emitted = step(self.decide, state, record, partition, record_offset)
                    await self.ports.publish(account, emitted)
            except (DecodeError, InvalidValue, TypeError, ValueError, ArithmeticError):
                continue
        self.ports.caught_up(len(records))
        log.info("ledger %s: folded %d inputs again after its row (offsets %d..%d)",
                 account, len(records), start, offset - 1)
        return state

    def due_expiries(self, now_us: int) -> list[tuple[str, int]]:
        """The accounts to send ExpireOrders for now, with its event time: those whose open
        orders are due by their latest input time moved on by the time they have been idle,
        or whose inputs have waited too long for a silent strategy (``idle_expiry_time``)."""
        now = self.clock()
        due = []
        for account in self.ports.accounts():
            idle_us = int((now - self.applied_at.get(account, self.started)) * 1_000_000)
            stalled_us = int((now - self.advanced_at.get(account, self.started)) * 1_000_000)
            as_of = idle_expiry_time(self.state(account), idle_us, stalled_us, self.patience, self.config)
            if as_of is not None:
                due.append((account, min(as_of, now_us)))
        return due
