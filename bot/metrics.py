"""Counters and timings for the operator, kept in Redis so that every process adds
to the same figures; `/metrics` reads them. Best effort: a Redis outage loses a
count, never a message. Labels name kinds (channel, language, outcome), never people.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from time import perf_counter

from flask import current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

COUNTERS = "polku:metrics:counters"
TIMINGS = "polku:metrics:timings"
# Upper bounds of the timing buckets, in seconds (Prometheus histograms).
BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# What each series means, for the HELP lines. A part that counts something new
# adds its text here (or calls `describe`); others get a plain default.
HELP: dict[str, str] = {
    "polku_messages_received_total": (
        "Inbound messages stored (a retried webhook counts once), by channel and "
        "the client's language (none before it is known)."
    ),
    "polku_messages_sent_total": (
        "Replies handed to Twilio (or the web chat), by channel and the client's "
        "language."
    ),
    "polku_limited_total": (
        "Messages or requests held back by a limit (bot/limits.py, message "
        "length), by kind and channel."
    ),
    "polku_failures_total": (
        "Failures where they happened, by kind: twilio_send, handoff_mail, "
        "question_mail, llm (with outcome), database and others."
    ),
    "polku_jobs_total": (
        "Job runs a worker finished (each retry counts), by job function and "
        "outcome (ok or failed)."
    ),
    "polku_job_wait_seconds": (
        "Time from a job's enqueueing (or its retry or turn coming due) to its "
        "start, by job function."
    ),
    "polku_job_run_seconds": "Time a job ran, by job function.",
    "polku_translation_seconds": (
        "Time the machine-translation backend took for one text, by language pair."
    ),
    "polku_translation_cache_total": "Translation cache lookups, by result.",
    "polku_llm_seconds": "Time a language-model call took, by purpose and outcome.",
}
DEFAULT_HELP = "Counted by Polku."

SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)')
UNESCAPE = re.compile(r"\\(.)")
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


def _redis() -> Redis | None:
    if not has_app_context():
        return None
    from bot.queue import get_queue

    try:
        return get_queue(current_app._get_current_object()).connection  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - no Redis: no metrics, nothing else lost
        return None


def field(name: str, labels: dict[str, str]) -> str:
    """Return the stored form of a series: name{key="value",...}, keys sorted."""
    if not labels:
        return name
    inner = ",".join(
        f'{key}="{_escape(str(value))}"' for key, value in sorted(labels.items())
    )
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def describe(name: str, text: str) -> None:
    """Give the series `name` its HELP text on /metrics."""
    HELP[name] = text


def language_label(code: str | None) -> str:
    """A client's language as a label: a supported code, `none` or `other`."""
    from translations import LANGUAGES_BY_CODE

    if code is None:
        return "none"

    return code if code in LANGUAGES_BY_CODE else "other"


def count(name: str, amount: int = 1, **labels: str) -> None:
    """Add `amount` to the counter `name` with `labels` (a `_total` name)."""
    connection = _redis()
    if connection is not None:
        record_count(connection, name, amount, labels)


def observe(name: str, seconds: float, **labels: str) -> None:
    """Record one duration of `name` (a `_seconds` name) in its histogram."""
    connection = _redis()
    if connection is not None:
        record_timing(connection, name, seconds, labels)


@contextmanager
def timed(name: str, **labels: str) -> Iterator[None]:
    """Observe how long the block takes, also when it raises."""
    start = perf_counter()
    try:
        yield
    finally:
        observe(name, perf_counter() - start, **labels)


def record_count(
    connection: Redis, name: str, amount: int, labels: dict[str, str]
) -> None:
    """Like `count`, on `connection`: for code that runs outside an app (RQ's
    worker)."""
    try:
        connection.hincrby(COUNTERS, field(name, labels), amount)
    except RedisError:
        logger.debug("metrics: counter %s not recorded", name)


def record_timing(
    connection: Redis, name: str, seconds: float, labels: dict[str, str]
) -> None:
    """Like `observe`, on `connection`."""
    try:
        pipe = connection.pipeline(transaction=False)
        for bound in BUCKETS:
            if seconds <= bound:
                pipe.hincrby(
                    TIMINGS, field(f"{name}_bucket", {**labels, "le": str(bound)}), 1
                )
        pipe.hincrby(TIMINGS, field(f"{name}_bucket", {**labels, "le": "+Inf"}), 1)
        pipe.hincrby(TIMINGS, field(f"{name}_count", labels), 1)
        pipe.hincrbyfloat(TIMINGS, field(f"{name}_sum", labels), seconds)
        pipe.execute()
    except RedisError:
        logger.debug("metrics: timing %s not recorded", name)


# -- The exposition: Prometheus text format 0.0.4 -----------------------------


@dataclass
class Family:
    """One metric with its HELP and TYPE, and its samples as (series, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[str, float]] = dataclass_field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((field(self.name + suffix, labels), value))


def render(families: Iterable[Family]) -> str:
    """Write `families` in the text format, each with its HELP and TYPE lines."""
    lines: list[str] = []
    for family in families:
        help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {family.name} {help_text}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        lines.extend(f"{series} {_number(value)}" for series, value in family.samples)

    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))

    return repr(float(value))


def stored_families(connection: Redis) -> list[Family]:
    """Read the counters and histograms every process recorded in Redis.

    Raises `RedisError` when Redis does not answer.
    """
    pipe = connection.pipeline(transaction=True)
    pipe.hgetall(COUNTERS)
    pipe.hgetall(TIMINGS)
    counters, timings = pipe.execute()

    return _counter_families(counters) + _histogram_families(timings)


def _parse(raw: bytes | str) -> tuple[str, dict[str, str]] | None:
    """Split a stored series into its name and labels."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    match = SERIES.match(text)
    if match is None:
        return None
    name, inner = match.group(1), match.group(2) or ""
    labels: dict[str, str] = {}
    end = 0
    for label in LABEL.finditer(inner):
        if label.start() != end:
            return None
        labels[label.group(1)] = UNESCAPE.sub(_unescaped, label.group(2))
        end = label.end()
    if end != len(inner):
        return None

    return name, labels


def _unescaped(match: re.Match[str]) -> str:
    return "\n" if match.group(1) == "n" else match.group(1)


def _counter_families(stored: dict[bytes, bytes]) -> list[Family]:
    families: dict[str, Family] = {}
    for raw, value in sorted(stored.items()):
        parsed = _parse(raw)
        if parsed is None:
            logger.debug("metrics: unreadable counter %r skipped", raw[:80])
            continue
        name, labels = parsed
        family = families.setdefault(
            name, Family(name, "counter", HELP.get(name, DEFAULT_HELP))
        )
        family.add(float(value), **labels)

    return [families[name] for name in sorted(families)]


@dataclass
class _Histogram:
    buckets: dict[str, float] = dataclass_field(default_factory=dict)
    sum: float = 0.0
    count: float | None = None


def _histogram_families(stored: dict[bytes, bytes]) -> list[Family]:
    # name -> label set without "le" -> what Redis holds for it
    series: dict[str, dict[tuple[tuple[str, str], ...], _Histogram]]
    series = defaultdict(lambda: defaultdict(_Histogram))
    for raw, value in stored.items():
        parsed = _parse(raw)
        part = next(
            (p for p in HISTOGRAM_PARTS if parsed and parsed[0].endswith(p)), ""
        )
        if parsed is None or not part:
            logger.debug("metrics: unreadable timing %r skipped", raw[:80])
            continue
        name, labels = parsed
        bound = labels.pop("le", "+Inf")
        histogram = series[name.removesuffix(part)][tuple(sorted(labels.items()))]
        if part == "_bucket":
            histogram.buckets[bound] = float(value)
        elif part == "_sum":
            histogram.sum = float(value)
        else:
            histogram.count = float(value)

    families = []
    for name in sorted(series):
        family = Family(name, "histogram", HELP.get(name, DEFAULT_HELP))
        for labels in sorted(series[name]):
            _add_histogram(family, dict(labels), series[name][labels])
        families.append(family)

    return families


def _add_histogram(
    family: Family, labels: dict[str, str], histogram: _Histogram
) -> None:
    """Add one label set's buckets, in order and cumulative, then sum and count."""
    seen = histogram.buckets
    bounds = ({str(bound) for bound in BUCKETS} | set(seen)) - {"+Inf"}
    running = 0.0
    for bound in sorted(bounds, key=_bound_value):
        # A bucket no observation fell into is absent from Redis: it holds what
        # the one below holds.
        running = max(running, seen.get(bound, running))
        family.add(running, "_bucket", **labels, le=bound)
    total = histogram.count if histogram.count is not None else seen.get("+Inf", 0.0)
    family.add(max(total, running), "_bucket", **labels, le="+Inf")
    family.add(histogram.sum, "_sum", **labels)
    family.add(max(total, running), "_count", **labels)


def _bound_value(bound: str) -> float:
    try:
        return float(bound)
    except ValueError:
        return float("inf")
