"""Resumable jobs: a journal of delivered results (``journal=PATH`` on ``map``,
``as_completed``, ``for_each`` and ``execute_tasks``).

Each delivered result is written to an SQLite file (standard library, WAL mode) with
one commit per result, so a process killed with SIGKILL loses only the fragments that
were in flight. Running the same job again with the same journal hands the recorded
results back without running them, in the same order for ``map``, and runs only the
rest.

A fragment is identified by its *key*: by default its index in the input, checked
against a stable hash of the item (so a changed input is an error, not a silently
wrong result); with ``key=`` a function of the item (its identity, so the input may
be reordered or extended). Values are pickled (protocol 4).

Usage::

    with Golem() as golem:
        for value in golem.map(worker, items, journal="squares.journal"):
            ...  # killed half way? run the script again: only the rest runs
"""

from __future__ import annotations

import bisect
import hashlib
import os
import pickle
import sqlite3
import struct
import threading
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

import attrs

from .errors import GolemTasksError
from .task import Task

#: Pickle protocol of stored values and of item hashes: fixed, so a journal written by
#: one Python reads the same in a later one (3.8+ all speak protocol 4).
PROTOCOL = 4
FORMAT = "golem_tasks journal 1"
#: Rows read at once when replaying by index (short read transactions let the WAL
#: be checkpointed while the job runs).
CHUNK = 1024

#: What :meth:`Journal.find` returns for a fragment that is not recorded.
MISSING: Any = object()

JournalPath = Union[str, "os.PathLike[str]"]
KeyFunction = Callable[[Any], Any]
Key = Union[int, str, bytes]


class JournalError(GolemTasksError):
    """The journal cannot be used: it belongs to another job, the input changed under
    a recorded key, or a result cannot be stored. The message names the fix."""


@attrs.frozen
class JobSignature:
    """What a journal belongs to: the worker, the shape of the job (``values`` for
    ``map``/``as_completed``/``for_each``, which share results; ``tasks`` for
    ``execute_tasks``) and how fragments are keyed (``index`` or ``key``)."""

    worker: str
    shape: str
    keyed_by: str

    @classmethod
    def of(cls, worker: Callable[..., Any], kind: str, key: Optional[KeyFunction]) -> "JobSignature":
        module = getattr(worker, "__module__", None) or "?"
        name = getattr(worker, "__qualname__", None) or getattr(worker, "__name__", None) or repr(worker)
        return cls(worker=f"{module}:{name}", shape="tasks" if kind == "execute_tasks" else "values",
                   keyed_by="index" if key is None else "key")

    def describe(self) -> str:
        job = "execute_tasks" if self.shape == "tasks" else "map/as_completed/for_each"
        keyed = "by index" if self.keyed_by == "index" else "by key="
        return f"{job} of {self.worker}, keyed {keyed}"


# Plain tuples, not attrs classes: one of each is made per item, on the replay path
# whose speed is the point of a journal.
class Recorded(NamedTuple):
    """A result found in the journal."""

    value: Any


class FragmentKey(NamedTuple):
    """How one fragment is found: its index, its key, and the hash of its item (None
    when the item cannot be hashed and a ``key=`` function identifies it)."""

    index: int  # type: ignore[assignment]  # shadows tuple.index, like a named field should
    key: Key
    digest: Optional[bytes]


# ------------------------------------------------------------------ item hashes
def stable_hash(item: Any) -> bytes:
    """A hash of ``item`` that is the same in every process: builtin containers are
    walked (sets and dicts in a sorted order, since their iteration order depends on
    ``PYTHONHASHSEED``); any other object is hashed by its pickle (protocol 4).

    Raises:
        TypeError, pickle.PicklingError: the item cannot be pickled.
    """
    if type(item) is int:  # the common case, fast
        return hashlib.blake2b(b"i%d" % item, digest_size=16).digest()
    hasher = hashlib.blake2b(digest_size=16)
    _feed(hasher, item)
    return hasher.digest()


def _feed(hasher: Any, item: Any) -> None:
    kind = type(item)
    if item is None or kind is bool:
        hasher.update(b"N" if item is None else b"T" if item else b"F")
    elif kind is int:
        hasher.update(b"i%d;" % item)
    elif kind is float:
        hasher.update(b"f" + struct.pack("<d", item))
    elif kind is str:
        data = item.encode("utf-8", "surrogatepass")
        hasher.update(b"s%d:" % len(data) + data)
    elif kind is bytes:
        hasher.update(b"b%d:" % len(item) + item)
    elif kind in (tuple, list):
        hasher.update(b"(%d:" % len(item) if kind is tuple else b"[%d:" % len(item))
        for element in item:
            _feed(hasher, element)
    elif kind in (set, frozenset):
        hasher.update(b"{%d:" % len(item))
        for digest in sorted(stable_hash(element) for element in item):
            hasher.update(digest)
    elif kind is dict:
        hasher.update(b"d%d:" % len(item))
        for pair in sorted(stable_hash(k) + stable_hash(v) for k, v in item.items()):
            hasher.update(pair)
    else:
        data = pickle.dumps(item, protocol=PROTOCOL)
        hasher.update(b"p%d:" % len(data) + data)


def _key_of(key: KeyFunction, item: Any, index: int) -> Key:
    value = key(item)
    if isinstance(value, (str, bytes)) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise JournalError(f"key= returned {value!r} for item {index}; it must return a str, int or bytes "
                       f"that identifies the item")


# ---------------------------------------------------------------------- journal
class Journal:
    """An open journal file. Thread-safe; every :meth:`record` is its own commit, and
    lookups are fastest in increasing index order (as a job reads its input).

    Open it with :meth:`open`; close it with :meth:`close` (or use it as a context
    manager).
    """

    def __init__(self, db: sqlite3.Connection, path: str, signature: JobSignature,
                 key: Optional[KeyFunction]) -> None:
        self._db = db
        self.path = path
        self.signature = signature
        self._key = key
        self._lock = threading.Lock()
        self._chunk_keys: List[int] = []
        self._chunk: List[Tuple[Optional[bytes], bytes]] = []
        self._chunk_start, self._chunk_end = 0, -1  # none read yet
        self._seen_keys: Dict[Key, int] = {}

    @classmethod
    def open(cls, path: JournalPath, signature: JobSignature, key: Optional[KeyFunction] = None) -> "Journal":
        """Open (or create) the journal at ``path`` for the job ``signature``.

        Raises:
            JournalError: the file is not a journal, or belongs to another job.
        """
        path = os.fspath(path)
        if key is not None and not callable(key):
            raise JournalError(f"key= must be a function of the item, got {key!r}")
        if os.path.isdir(path):
            raise JournalError(f"journal={path!r} is a directory; name a file (it is created if missing)")
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {path!r}: {exc}") from exc
        try:
            _prepare(db, path, signature)
        except BaseException:
            db.close()
            raise
        return cls(db, path, signature, key)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM results").fetchone()[0])

    def key_of(self, index: int, item: Any) -> FragmentKey:
        """The key of the ``index``-th item.

        Raises:
            JournalError: the item cannot be hashed (and no ``key=`` was given), or
                ``key=`` gave the same key to two items.
        """
        if self._key is None:
            try:
                return FragmentKey(index, index, stable_hash(item))
            except Exception as exc:
                raise JournalError(
                    f"item {index} cannot be hashed for the journal {self.path!r} ({type(exc).__name__}: "
                    f"{exc}); pass key=... (a function giving each item a str or int id)") from exc
        key = _key_of(self._key, item, index)
        earlier = self._seen_keys.setdefault(key, index)
        if earlier != index:
            raise JournalError(f"key= gave items {earlier} and {index} the same key {key!r}; "
                               f"a key must identify one item")
        try:
            digest: Optional[bytes] = stable_hash(item)
        except Exception:  # identified by key= alone
            digest = None
        return FragmentKey(index, key, digest)

    def lookup(self, fragment: FragmentKey) -> Optional[Recorded]:
        """The recorded result of ``fragment``, or None.

        Raises:
            JournalError: a different item was recorded under the same key.
        """
        value = self.find(fragment)
        return None if value is MISSING else Recorded(value)

    def find(self, fragment: FragmentKey) -> Any:
        """:meth:`lookup` without the wrapper: the value, or :data:`MISSING`."""
        row = self._by_index(fragment.index) if self._key is None else self._by_key(fragment.key)
        if row is None:
            return MISSING
        digest, blob = row
        if fragment.digest is not None and digest is not None and digest != fragment.digest:
            where = f"index {fragment.index}" if self._key is None else f"key {fragment.key!r}"
            raise JournalError(
                f"item {fragment.index} is not the item recorded under {where} in the journal {self.path!r}: "
                f"the input changed. Use a new journal path (or delete this one) to start afresh"
                + ("" if self._key is not None else ", or pass key=... so items are matched by their own id"))
        return pickle.loads(blob)

    def record(self, fragment: FragmentKey, value: Any) -> None:
        """Store ``value`` as the result of ``fragment`` (one commit).

        Raises:
            JournalError: the value cannot be pickled.
        """
        try:
            blob = pickle.dumps(value, protocol=PROTOCOL)
        except Exception as exc:
            raise JournalError(
                f"the result of fragment {fragment.index} cannot be stored in the journal {self.path!r}: "
                f"{type(exc).__name__}: {exc}. Return plain picklable data from the worker "
                f"(numbers, strings, lists, dicts, dataclasses), or run without journal=") from exc
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO results (key, idx, digest, value) VALUES (?, ?, ?, ?)",
                             (fragment.key, fragment.index, fragment.digest, blob))
            self._cache(fragment.index, fragment.digest, blob)

    def indexes(self) -> List[int]:
        """The indexes of the recorded results, sorted (as they were when recorded)."""
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT idx FROM results ORDER BY idx")]

    # Index lookups come in increasing order (the input is read front to back), so
    # rows are read in chunks ahead instead of one query per item. The chunk covers the
    # indexes [_chunk_start, _chunk_end]; a record inside that range is added to it, so
    # any lookup order gives the file's answer.
    def _by_index(self, index: int) -> Optional[Tuple[Optional[bytes], bytes]]:
        with self._lock:
            if not self._chunk_start <= index <= self._chunk_end:
                rows = self._db.execute(
                    "SELECT key, digest, value FROM results WHERE key >= ? ORDER BY key LIMIT ?",
                    (index, CHUNK)).fetchall()
                self._chunk_keys = [row[0] for row in rows]
                self._chunk = [(row[1], row[2]) for row in rows]
                self._chunk_start = index
                self._chunk_end = self._chunk_keys[-1] if len(rows) == CHUNK else 1 << 62
            at = bisect.bisect_left(self._chunk_keys, index)
            if at < len(self._chunk_keys) and self._chunk_keys[at] == index:
                return self._chunk[at]
            return None

    def _cache(self, index: int, digest: Optional[bytes], blob: bytes) -> None:
        """Keep the chunk true to the file after a record (locked)."""
        if self._key is None and self._chunk_start <= index <= self._chunk_end:
            at = bisect.bisect_left(self._chunk_keys, index)
            if at < len(self._chunk_keys) and self._chunk_keys[at] == index:
                self._chunk[at] = (digest, blob)
            else:
                self._chunk_keys.insert(at, index)
                self._chunk.insert(at, (digest, blob))

    def _by_key(self, key: Key) -> Optional[Tuple[Optional[bytes], bytes]]:
        with self._lock:
            row = self._db.execute("SELECT digest, value FROM results WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])


def _prepare(db: sqlite3.Connection, path: str, signature: JobSignature) -> None:
    """Create the tables, or check that the file is a journal of this job."""
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not a power
        # cut), at a fraction of the cost of FULL's fsync per commit.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                # One b-tree and no second index: each commit writes as few pages as it
                # can (a second index made a commit four times as slow). Keyed by index,
                # the key is the index itself.
                db.execute("CREATE TABLE results (key PRIMARY KEY, idx INTEGER NOT NULL, digest BLOB, "
                           "value BLOB NOT NULL) WITHOUT ROWID")
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [("format", FORMAT), ("worker", signature.worker), ("shape", signature.shape),
                                ("keyed_by", signature.keyed_by)])
                db.execute("COMMIT")
                return
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        meta = dict(db.execute("SELECT name, value FROM meta")) if "meta" in tables else {}
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path!r} is not a golem_tasks journal ({exc}); name another file") from exc
    if meta.get("format") != FORMAT:
        raise JournalError(f"{path!r} is not a golem_tasks journal; name another file")
    recorded = JobSignature(worker=meta.get("worker", "?"), shape=meta.get("shape", "?"),
                            keyed_by=meta.get("keyed_by", "?"))
    if recorded != signature:
        raise JournalError(
            f"the journal {path!r} belongs to another job ({recorded.describe()}), not to this one "
            f"({signature.describe()}); give this job its own journal path, or delete the file to start afresh")


# ------------------------------------------------------------- scheduler side
class Replayed:
    """A fragment whose result came from the journal. It stands in for a scheduler
    fragment that never reaches the pool: it has the fragment's ``index``, ``item``,
    ``task`` and a ``future`` that is already resolved (itself)."""

    __slots__ = ("index", "item", "task", "value")

    def __init__(self, index: int, item: Any, value: Any, task: Any) -> None:
        self.index = index
        self.item = item
        self.value = value
        self.task = task

    # -- the resolved-future protocol the caller's side uses
    @property
    def future(self) -> "Replayed":
        return self

    def result(self, timeout: Optional[float] = None) -> Any:
        return self.task if self.task is not None else self.value

    def exception(self, timeout: Optional[float] = None) -> None:
        return None

    def done(self) -> bool:
        return True

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        fn(self)


class JournalRun:
    """One job's use of a journal. Items are looked up as the caller's thread reads
    them (:meth:`replay`); a result is recorded as soon as its fragment finishes, on
    the thread that finished it (:meth:`track`), so a result waiting behind a slower
    one in ``map`` order is not lost to a crash; :meth:`delivered` raises, on the
    caller's thread, an error met while recording."""

    def __init__(self, journal: Journal, *, tasks: bool) -> None:
        self.journal = journal
        self.tasks = tasks
        self.replayed = 0
        self._lock = threading.Lock()
        self._pending: Dict[int, FragmentKey] = {}
        self._errors: Dict[int, JournalError] = {}
        self._closed = False

    def replay(self, index: int, item: Any) -> Optional[Replayed]:
        """The stand-in for the ``index``-th item when its result is recorded, else None
        (then the item's key is kept for :meth:`track`)."""
        task = None
        if self.tasks:
            task = item if isinstance(item, Task) else Task(item)
            item = task.data
        key = self.journal.key_of(index, item)
        value = self.journal.find(key)
        if value is MISSING:
            with self._lock:
                self._pending[index] = key
            return None
        self.replayed += 1
        if task is not None:
            _settle(task, value)
        return Replayed(index, item, value, task)

    def track(self, fragment: Any) -> None:
        """Record ``fragment``'s result when it finishes (failures are not recorded:
        they run again next time)."""
        fragment.future.add_done_callback(lambda _: self._record(fragment))

    def delivered(self, fragment: Any) -> None:
        """``fragment`` is handed to the caller: make sure its result is recorded.

        Raises:
            JournalError: the result could not be stored.
        """
        if type(fragment) is Replayed:  # recorded already; the common case of a rerun
            return
        self._record(fragment)
        with self._lock:
            error = self._errors.pop(fragment.index, None)
        if error is not None:
            raise error

    def _record(self, fragment: Any) -> None:
        # Whoever comes first, the finishing thread or the caller, records; the lock
        # makes the other wait until the outcome (row or error) is known.
        with self._lock:
            key = self._pending.pop(fragment.index, None)
            if key is None or self._closed:  # closed: a fragment finishing after its job ended
                return
            future = fragment.future
            if future.cancelled() or future.exception() is not None:
                return
            value = fragment.task.result if fragment.task is not None else future.result()
            try:
                self.journal.record(key, value)
            except JournalError as exc:
                self._errors[fragment.index] = exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.journal.close()


def _settle(task: Any, value: Any) -> None:
    """Mark a replayed Task accepted with its recorded value, through its own methods."""
    task._bind(accept=lambda _: None, reject=lambda reason, retry: None)
    task.accept_result(value)


def open_run(path: Optional[JournalPath], worker: Callable[..., Any], kind: str,
             key: Optional[KeyFunction]) -> Optional[JournalRun]:
    """The journal of one job, or None without ``journal=``."""
    if path is None:
        if key is not None:
            raise JournalError("key= identifies items in a journal: pass journal=PATH too")
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise JournalError(f"journal= must be a file path, got {path!r}")
    signature = JobSignature.of(worker, kind, key)
    return JournalRun(Journal.open(path, signature, key), tasks=kind == "execute_tasks")


def check(path: Optional[JournalPath], worker: Callable[..., Any], kind: str,
          key: Optional[KeyFunction]) -> None:
    """Raise now, at the call, for a journal that cannot serve this job."""
    run = open_run(path, worker, kind, key)
    if run is not None:
        run.close()


def recorded_values(path: JournalPath) -> Iterator[Tuple[int, Any]]:
    """``(index, value)`` of every recorded result, by index (for inspection)."""
    db = sqlite3.connect(os.fspath(path))
    try:
        rows = db.execute("SELECT idx, value FROM results ORDER BY idx").fetchall()
    finally:
        db.close()
    for index, blob in rows:
        yield index, pickle.loads(blob)
