"""The worker's OutcomeStore: RocksDB on disk (rocksdict, as Faust's table store), with
the most recently used values in memory. Memory stays flat however long the response log
grows; what is on disk survives a restart, so a restarted worker reads only the log's
new records (``tables.response_log``)."""

from __future__ import annotations

import threading
from pathlib import Path

from rocksdict import BlockBasedOptions, Cache, Options, Rdict

from domain.enrich.cache import MemoryStore, OutcomeStore
from streams.errors import ConfigError

WRITE_BUFFER_BYTES = 8 << 20  # RocksDB's memtable (64 MB by default): the memory a store holds before it flushes
BLOCK_CACHE_BYTES = 8 << 20  # as the tables' stores (tables/symbol_table.py)


class RocksStore:
    """An OutcomeStore in a RocksDB directory, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: Rdict | None = None
        self._lock = threading.Lock()  # the log is read in a thread while the loop looks up

    def _open(self) -> Rdict:
        if self._db is None:
            self.path.mkdir(parents=True, exist_ok=True)
            options = Options(raw_mode=True)
            options.create_if_missing(True)
            options.set_write_buffer_size(WRITE_BUFFER_BYTES)
            options.set_max_write_buffer_number(2)
            table = BlockBasedOptions()
            table.set_block_cache(Cache(BLOCK_CACHE_BYTES))
            options.set_block_based_table_factory(table)
            try:
                self._db = Rdict(str(self.path), options)
            except Exception as error:  # rocksdict raises plain Exceptions (e.g. the lock of another process)
                raise ConfigError(f"cannot open the response log store {self.path} "
                                  f"(TICKTIDE_DATA_DIR: one per worker): {error}") from None
        return self._db

    def get(self, key: str) -> bytes | None:
        """The value kept under a key, or None."""
        with self._lock:
            value = self._open().get(key.encode())
        return value if isinstance(value, bytes) else None

    def put(self, key: str, value: bytes) -> None:
        """Keep a value."""
        with self._lock:
            self._open()[key.encode()] = value

    def delete(self, key: str) -> None:
        """Forget a key."""
        with self._lock:
            del self._open()[key.encode()]

    def clear(self) -> None:
        """Forget everything (the directory is destroyed and made again)."""
        with self._lock:
            self._close()
            if self.path.exists():
                Rdict.destroy(str(self.path))
            self._open()

    def close(self) -> None:
        """Flush and close (the next use opens it again)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class TieredStore:
    """A small memory store in front of a large one (disk): writes go to both, reads try
    memory first and keep what they found there."""

    def __init__(self, front: MemoryStore, back: OutcomeStore) -> None:
        self.front = front
        self.back = back

    def get(self, key: str) -> bytes | None:
        """From memory, else from the back store (then kept in memory)."""
        value = self.front.get(key)
        if value is None:
            value = self.back.get(key)
            if value is not None:
                self.front.put(key, value)
        return value

    def put(self, key: str, value: bytes) -> None:
        """Keep a value in both."""
        self.back.put(key, value)
        self.front.put(key, value)

    def delete(self, key: str) -> None:
        """Forget a key in both."""
        self.front.delete(key)
        self.back.delete(key)

    def clear(self) -> None:
        """Forget everything in both."""
        self.front.clear()
        self.back.clear()


def disk_store(path: Path, memory_entries: int) -> TieredStore:
    """The worker's store: RocksDB at ``path``, the ``memory_entries`` most recently used in memory."""
    return TieredStore(MemoryStore(memory_entries), RocksStore(path))
