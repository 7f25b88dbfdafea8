"""Language detection: which of Polku's languages a client's text is written in.

Lingua ships its models, restricted here to the languages Polku speaks. The
conversation asks before it switches, and never on a short or ambiguous text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from lingua import Language as LinguaLanguage
from lingua import LanguageDetector, LanguageDetectorBuilder

from translations import LANGUAGES_BY_CODE

logger = logging.getLogger(__name__)

# Lingua's names for Polku's languages (Dari is written like Persian).
LINGUA = {
    "fi": LinguaLanguage.FINNISH,
    "sv": LinguaLanguage.SWEDISH,
    "en": LinguaLanguage.ENGLISH,
    "uk": LinguaLanguage.UKRAINIAN,
    "ru": LinguaLanguage.RUSSIAN,
    "ar": LinguaLanguage.ARABIC,
    "fa": LinguaLanguage.PERSIAN,
    "so": LinguaLanguage.SOMALI,
    "et": LinguaLanguage.ESTONIAN,
}
CODES = {language: code for code, language in LINGUA.items()}
# Below these a text says too little: "ok", "Hei", "1".
MIN_LETTERS = 12
MIN_WORDS = 2
# Sure enough to ask the client, and clearly ahead of the runner-up.
MIN_CONFIDENCE = 0.7
MIN_MARGIN = 0.3


@dataclass(frozen=True)
class Detection:
    code: str
    confidence: float


@cache
def detector() -> LanguageDetector:
    """Build the detector once per process; the worker calls this before forking."""
    languages = [LINGUA[code] for code in LANGUAGES_BY_CODE if code in LINGUA]

    return LanguageDetectorBuilder.from_languages(*languages).build()


def preload() -> None:
    """Load the language models now, so that the first message is not slow."""
    detector().compute_language_confidence_values("Polku")


def best_guess(text: str) -> Detection | None:
    """Return the most likely language of `text` with its confidence, if any."""
    values = detector().compute_language_confidence_values(text)
    if not values:
        return None

    return Detection(CODES[values[0].language], values[0].value)


def detect(text: str) -> Detection | None:
    """Return the language of `text`, or None when the text is too short or unclear."""
    letters = sum(char.isalpha() for char in text)
    if letters < MIN_LETTERS or len(text.split()) < MIN_WORDS:
        return None
    values = detector().compute_language_confidence_values(text)
    if not values:
        return None
    first = values[0].value
    second = values[1].value if len(values) > 1 else 0.0
    if first < MIN_CONFIDENCE or first - second < MIN_MARGIN:
        return None

    return Detection(CODES[values[0].language], first)
