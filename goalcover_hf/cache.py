"""A content-addressed cache of (sample, subgoal) judgements in SQLite.

The key is a hash of everything that decides a judgement: model identity, engine, prompt version, mode, the subgoal's
text and rubric, the rendered sample text and the decoding settings. A re-run, or a dataset that overlaps one already
scored, reads its judgements back instead of computing them; an interrupted run resumes where it stopped. The
database runs in WAL mode with a busy timeout, so several processes (``datasets`` ``num_proc``) can read and write it
at once. Judgements that ended in an error are never stored: they are retried next time.

:class:`CachingJudge` wraps any judge the way lm-evaluation-harness wraps a model in ``CachingLM``: pairs found are
read back, the others computed by the judge in batches, each batch stored as soon as it is done.

Example:
    >>> cache = PairCache()  # goalcover_hf.paths.cache_dir() / "pairs.sqlite"
    >>> key = pair_key({"model": "m@1", "prompt": "score_v2@abc"}, subgoal_text, sample_text)
    >>> cache.put_many({key: {"score": 4, "expected": 3.8, "explanation": None, "error": None}})
    >>> cache.get_many([key])[key]["score"]
    4
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

from .columns import Judgement
from .errors import GoalcoverError
from .paths import cache_dir
from .prompts import subgoal_text
from .spec import Subgoal

FILENAME = "pairs.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pairs (
    key TEXT PRIMARY KEY,
    score INTEGER,
    expected REAL,
    explanation TEXT,
    settings TEXT NOT NULL,
    created REAL NOT NULL
)
"""
_CHUNK = 500  # SQLite limits the number of parameters in one statement
OPEN_TIMEOUT_S = 60  # how long opening waits for other processes that hold the file


def default_path() -> Path:
    """The pair cache file used when none is given: ``cache_dir()/pairs.sqlite``."""
    return cache_dir() / FILENAME


def pair_key(settings: Mapping[str, Any], subgoal_text: str, sample_text: str) -> str:
    """Hash of one pair's inputs. ``settings`` holds model identity, engine, prompt version, mode and decoding."""
    blob = json.dumps([dict(settings), subgoal_text, sample_text], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class PairCache:
    """SQLite store of judgements keyed by :func:`pair_key`. Safe to share between processes."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_path()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        # A connection must not cross a fork: datasets' workers each open their own.
        """The SQLite connection of this process (opened on first use; a damaged file raises here)."""
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            deadline = time.monotonic() + OPEN_TIMEOUT_S
            while True:
                conn = sqlite3.connect(self.path, timeout=OPEN_TIMEOUT_S, isolation_level=None)
                try:
                    conn.execute(f"PRAGMA busy_timeout = {OPEN_TIMEOUT_S * 1000}")
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = NORMAL")
                    conn.execute(_SCHEMA)
                    break
                except sqlite3.DatabaseError as err:
                    conn.close()
                    # Switching a new file to WAL while another process does the same can fail at once as "locked"
                    # (the busy handler is not asked): that one is worth another try, anything else is not.
                    if "locked" in str(err) and time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                    raise GoalcoverError(f"{self.path}: cannot open the pair cache ({err}); remove the file, or pass "
                                         "--no-cache (cache=False)") from None
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def open(self) -> "PairCache":
        """Open (or create) the database now rather than at the first judgement; a damaged file raises here."""
        self.conn
        return self

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored judgements among ``keys`` (missing keys are absent from the result)."""
        keys = list(dict.fromkeys(keys))
        found = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT key, score, expected, explanation FROM pairs WHERE key IN ({marks})", chunk
            )
            for key, score, expected, explanation in rows:
                found[key] = {"score": score, "expected": expected, "explanation": explanation, "error": None}
        return found

    def put_many(self, items: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Any] | None = None) -> int:
        """Store judgements in one transaction; items with an ``error`` are skipped (so they are retried).

        ``settings`` (the key's settings) is kept beside each entry for :meth:`info`. Returns how many were stored.
        """
        now = time.time()
        note = json.dumps(dict(settings or {}), sort_keys=True)
        rows = [
            (key, j.get("score"), j.get("expected"), j.get("explanation"), note, now)
            for key, j in items.items()
            if not j.get("error")
        ]
        if rows:
            with self._transaction():
                self.conn.executemany("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def count_since(self, since: float) -> int:
        """Judgements stored at or after ``since`` (a ``time.time()``): what a run that began then has kept."""
        if not self.path.exists():
            return 0
        return self.conn.execute("SELECT COUNT(*) FROM pairs WHERE created >= ?", (since,)).fetchone()[0]

    def info(self) -> dict[str, Any]:
        """Size and content summary: entries per (model, prompt version, mode, method: None for one prompt's own)."""
        if not self.path.exists():
            return {"path": str(self.path), "entries": 0, "bytes": 0, "by_settings": []}
        total = self.conn.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
        groups = self.conn.execute("SELECT settings, COUNT(*) FROM pairs GROUP BY settings ORDER BY 2 DESC").fetchall()
        by_settings = []
        for note, count in groups:
            s = json.loads(note)
            by_settings.append({k: s.get(k) for k in ("model", "engine", "prompt_version", "mode", "method")}
                               | {"entries": count})
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {"path": str(self.path), "entries": total, "bytes": size, "by_settings": by_settings}

    def clear(self) -> int:
        """Delete every stored judgement; returns how many there were."""
        if not self.path.exists():
            return 0
        with self._transaction():
            n = self.conn.execute("DELETE FROM pairs").rowcount
        self.conn.execute("VACUUM")
        return n

    def close(self) -> None:
        """Close this process's connection (a later use opens it again)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    @contextmanager
    def _transaction(self):
        # IMMEDIATE takes the write lock up front, so concurrent writers queue on busy_timeout instead of failing on
        # a lock upgrade.
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class CachingJudge:
    """A judge whose judgements go through a :class:`PairCache`.

    Args:
        judge: anything with ``judge_texts(samples, subgoals) -> [sample][subgoal] Judgement``,
            ``wants_explanation(judgement)``/``owes_explanation(judgement, asked=None) -> bool`` and
            ``add_explanations(samples, subgoals, judged, pairs)``
            (a :class:`~goalcover_hf.judging.MethodJudge`).
        cache: the pair cache.
        settings: everything besides the subgoal and sample texts that decides a score (model identity, engine,
            prompt version, mode, method, decoding); part of every key. Which pairs get explanations is not: a
            stored explanation serves every setting, and one that is missing is added without re-scoring.
        batch_size: samples the judge is given at a time; each batch is stored as soon as it is done, so an
            interrupted run keeps all finished batches.

    Judgements that ended in an error are not stored: they are retried next time.
    """

    def __init__(self, judge, cache: PairCache, settings: Mapping[str, Any], batch_size: int = 8):
        self.judge, self.cache, self.settings, self.batch_size = judge, cache, dict(settings), batch_size

    def _as_asked(self, j: Judgement, asked: bool | None = None) -> Judgement:
        # a stored explanation these settings do not ask for stays in the cache, out of the result
        keep = self.judge.wants_explanation(j) if asked is None else asked
        return j if j.explanation is None or keep else Judgement(j.score, j.expected)

    def owes_explanation(self, j: Judgement, asked: bool | None = None) -> bool:
        """Whether a judgement still lacks the explanation the wrapped judge's settings (or ``asked``) ask for."""
        return self.judge.owes_explanation(j, asked)

    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal],
                    explain: Collection[tuple[int, int]] | None = None) -> list[list[Judgement]]:
        """Judge every sample against every subgoal, reading back what the cache holds; returns ``[sample][subgoal]``.

        ``explain``: the (sample, subgoal) positions that get an explanation (and only those), instead of the ones
        the judge's settings pick.
        """
        subgoals = list(subgoals)
        texts = [subgoal_text(sub) for sub in subgoals]
        keys = [[pair_key(self.settings, t, sample) for t in texts] for sample in samples]
        hits = self.cache.get_many(k for row in keys for k in row)
        asked = (lambda i, j: None) if explain is None else (lambda i, j: (i, j) in explain)
        results = [[self._as_asked(Judgement(**hits[k]), asked(i, j)) if k in hits else None
                     for j, k in enumerate(row)] for i, row in enumerate(keys)]

        def owes(i: int, j: int) -> bool:
            return self.owes_explanation(results[i][j], asked(i, j))

        todo = [i for i, row in enumerate(results) if any(r is None or owes(i, j) for j, r in enumerate(row))]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            changed = {(i, j) for i in chunk for j, r in enumerate(results[i]) if r is None}
            # only the subgoals some sample of the chunk lacks: editing one subgoal re-asks that one alone
            asked_subs = sorted({j for _, j in changed})
            if asked_subs:
                inner = None if explain is None else {
                    (n, m) for n, i in enumerate(chunk) for m, j in enumerate(asked_subs) if (i, j) in explain}
                judged = self.judge.judge_texts([samples[i] for i in chunk], [subgoals[j] for j in asked_subs],
                                                explain=inner)
                for i, row in zip(chunk, judged):
                    for j, new in zip(asked_subs, row):
                        if results[i][j] is None:
                            results[i][j] = new
            # scores read back that now owe an explanation (a cached run without them, another threshold)
            owed = [(n, j) for n, i in enumerate(chunk) for j in range(len(subgoals)) if owes(i, j)]
            if owed:
                local = [results[i] for i in chunk]
                self.judge.add_explanations([samples[i] for i in chunk], subgoals, local, owed)
                changed |= {(chunk[n], j) for n, j in owed}
            done = {keys[i][j]: results[i][j].__dict__ for i, j in changed if results[i][j].error is None}
            self.cache.put_many(done, self.settings)
        return results
