"""ESCO skills and occupations: the local index, its importer and the matcher.

The interview's occupation and skills steps ask `get_matcher(app)`; without an
imported index it returns None and the client's own words are kept.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from esco.embeddings import available
from esco.index import index_status
from esco.matcher import Match, Matcher

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["Match", "Matcher", "get_matcher", "preload"]

logger = logging.getLogger(__name__)
_lock = threading.Lock()


def get_matcher(app: Flask) -> Matcher | None:
    """Return the app's ESCO matcher, loaded once, or None without an index.

    A new import is noticed (one stat() per call). A worker loads the index
    before it forks, so restart workers after an import: a work horse that
    notices it loads the index again for each job.
    """
    path = app.config["POLKU"].esco_index
    try:
        changed = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    with _lock:
        cached = app.extensions.get("polku.esco")
        if cached is not None and cached[0] == changed:
            return cached[1]
        if index_status(path) is None:
            return None
        matcher = Matcher.load(path, available())
        app.extensions["polku.esco"] = (changed, matcher)
        logger.info(
            "esco: loaded version %s, %d concepts", matcher.version, len(matcher.uris)
        )

    return matcher


def preload(app: Flask) -> None:
    """Load the index before the worker forks: each job then starts warm."""
    get_matcher(app)
