"""Machine translation of free text: after the anonymiser, before the counsellor.

`Translator.translate` takes anonymised text (bot/gate.py), asks the configured
backend (translations/argos.py, or none), puts the real values back where the
placeholders were, and caches each result in Redis, encrypted, per text and pair.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from redis import Redis
from redis.exceptions import RedisError

from bot import crypto, metrics
from bot.gate import AnonymisedText, release
from translations.argos import ArgosBackend, TranslationBackendError

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

# What became of a text: translated; already in the target language; no
# installed package for the pair; the translation lost a placeholder (so a
# name or number would be missing) and was thrown away; the backend failed.
TRANSLATED, ORIGINAL, NOT_TRANSLATED, PLACEHOLDER_LOST, FAILED = (
    "translated",
    "original",
    "not_translated",
    "placeholder_lost",
    "failed",
)
CACHE_PREFIX = "polku:mt:"
# Models write "<PERSON_1>" back as "<PERSON 1>", "< PERSON_1 >" or
# "<person_1>": SentencePiece decoding turns "_" into a space.
PLACEHOLDER = re.compile(r"<\s*([A-Za-z]+(?:[ _][A-Za-z]+)*)[ _]*(\d+)\s*>")


class Backend(Protocol):
    """A machine-translation engine that runs on the city's own servers."""

    name: str

    def route(self, source: str, target: str) -> list[str] | None: ...

    def fingerprint(self) -> str: ...

    def translate(self, text: str, source: str, target: str) -> str: ...


class NoBackend:
    """No machine translation: every pair is missing."""

    name = "none"

    def route(self, source: str, target: str) -> list[str] | None:
        return [source] if source == target else None

    def fingerprint(self) -> str:
        return ""

    def translate(self, text: str, source: str, target: str) -> str:
        raise TranslationBackendError("machine translation is turned off")


@dataclass(frozen=True)
class Translation:
    """One text's translation; `text` is None unless it was translated."""

    source: str
    target: str
    status: str
    text: str | None = None

    @property
    def translated(self) -> bool:
        return self.status == TRANSLATED


def placeholders_in(text: str) -> list[str]:
    """Return the placeholders in `text`, in the anonymiser's own spelling."""
    return [_canonical(match) for match in PLACEHOLDER.finditer(text)]


def _canonical(match: re.Match[str]) -> str:
    kind = re.sub(r"[ _]+", "_", match.group(1)).upper()

    return f"<{kind}_{match.group(2)}>"


def restore(translated: str, source_text: str, values: Mapping[str, str]) -> str | None:
    """Put `values` back for the placeholders in `translated`.

    Return None when the translation lost a placeholder of `source_text` or
    made up one that is not there: then a name, number or address would be
    missing or wrong, and the caller keeps the original instead.
    """
    expected = set(placeholders_in(source_text))
    seen: set[str] = set()

    def put_back(match: re.Match[str]) -> str:
        placeholder = _canonical(match)
        seen.add(placeholder)
        return values.get(placeholder, placeholder)

    restored = PLACEHOLDER.sub(put_back, translated)
    if seen != expected:
        return None

    return restored


class Translator:
    """Translate anonymised text with a backend, cached in Redis."""

    def __init__(
        self,
        backend: Backend,
        cache: Redis | None = None,
        *,
        secret: str = "",
        cache_seconds: int = 24 * 3600,
    ):
        self.backend = backend
        self.cache = cache
        self.cache_seconds = cache_seconds
        self._key = hashlib.sha256(b"polku-translation-cache:" + secret.encode())

    def can_translate(self, source: str, target: str) -> bool:
        return self.backend.route(source, target) is not None

    def translate(
        self,
        text: AnonymisedText,
        source: str,
        target: str,
        values: Mapping[str, str] | None = None,
    ) -> Translation:
        """Translate `text` from `source` to `target` and restore its `values`.

        Never raises for a missing pair, a failing model or a lost placeholder:
        the status says what happened and the caller keeps the original.
        """
        released = release(text)
        if source == target:
            return Translation(source, target, ORIGINAL)
        if not self.can_translate(source, target):
            return Translation(source, target, NOT_TRANSLATED)

        key = self._cache_key(released, source, target)
        translated = self._cached(key)
        if key is not None:
            result = "miss" if translated is None else "hit"
            metrics.count("polku_translation_cache_total", result=result)
        if translated is None:
            try:
                with metrics.timed(
                    "polku_translation_seconds", source=source, target=target
                ):
                    translated = self.backend.translate(released, source, target)
            except TranslationBackendError as exc:
                logger.warning("translation %s->%s failed: %s", source, target, exc)
                return Translation(source, target, FAILED)
            self._store(key, translated)

        restored = restore(translated, released, values or {})
        if restored is None:
            logger.warning("translation %s->%s lost a placeholder", source, target)
            return Translation(source, target, PLACEHOLDER_LOST)

        return Translation(source, target, TRANSLATED, restored)

    def for_client(
        self,
        text: AnonymisedText,
        source: str,
        language: str,
        values: Mapping[str, str] | None = None,
    ) -> str | None:
        """Return a model's `text` in the client's `language`, or None.

        None when it cannot be translated faithfully: the caller then sends
        the client a catalogue text instead, never an untranslated one.
        """
        if source == language:
            return restore(release(text), release(text), values or {})
        translation = self.translate(text, source, language, values)

        return translation.text if translation.translated else None

    def _cache_key(self, text: str, source: str, target: str) -> str | None:
        if self.cache is None:
            return None
        fingerprint = self.backend.fingerprint()
        message = "\x1f".join((self.backend.name, fingerprint, source, target, text))
        digest = hmac.new(self._key.digest(), message.encode(), hashlib.sha256)

        return CACHE_PREFIX + digest.hexdigest()

    def _cached(self, key: str | None) -> str | None:
        # Best effort: without Redis, translate again.
        if self.cache is None or key is None:
            return None
        try:
            token = self.cache.get(key)
            return crypto.decrypt(token.decode("ascii")) if token else None
        except (RedisError, crypto.DecryptionError):
            logger.warning("translation cache: could not read", exc_info=True)
            return None

    def _store(self, key: str | None, translated: str) -> None:
        if self.cache is None or key is None:
            return
        try:
            # Encrypted: anonymised text can still be personal in context.
            token = crypto.encrypt(translated)
            self.cache.set(key, token, ex=self.cache_seconds)
        except RedisError:
            logger.warning("translation cache: could not write", exc_info=True)


def make_backend(name: str, packages_dir: Path, work_dir: Path) -> Backend:
    """Return the backend that TRANSLATOR names."""
    if name == "argos":
        return ArgosBackend(packages_dir, work_dir)

    return NoBackend()


def get_translator(app: Flask) -> Translator:
    """Return the app's translator, built once, with the queue's Redis as cache."""
    translator = app.extensions.get("polku.translator")
    if translator is None:
        from bot.queue import get_queue

        settings = app.config["POLKU"]
        backend = make_backend(
            settings.translator, settings.packages_dir, settings.instance_path
        )
        hours = settings.translation_cache_hours
        translator = Translator(
            backend,
            get_queue(app).connection if hours else None,
            secret=settings.secret_key,
            cache_seconds=hours * 3600,
        )
        app.extensions["polku.translator"] = translator

    return translator
