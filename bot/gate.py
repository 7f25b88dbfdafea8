"""The one door to language models and translators: only anonymised text passes.

`bot.anonymiser.anonymise` is the only maker of `AnonymisedText`; every client
of a model or a translation service takes its text through `release`, which
refuses a plain string. A test checks that nothing else seals text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SEAL = object()


class UnsafeTextError(TypeError):
    """Text that was not anonymised was about to leave for a model or translator."""


@dataclass(frozen=True)
class AnonymisedText:
    """Text in which personal data has been replaced by placeholders."""

    text: str
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise UnsafeTextError(
                "AnonymisedText is made only by bot.anonymiser.anonymise; "
                "anonymise the text instead of wrapping it"
            )

    def __str__(self) -> str:
        return self.text


def seal(text: str) -> AnonymisedText:
    """Mark `text` as anonymised; for bot.anonymiser only."""
    return AnonymisedText(text, _SEAL)


def release(value: AnonymisedText) -> str:
    """Return the text to send to a model or translator, or refuse a plain string."""
    if not isinstance(value, AnonymisedText):
        raise UnsafeTextError(
            f"refused to send {type(value).__name__} to a model or translator; "
            "pass it through bot.anonymiser.anonymise first"
        )

    return value.text
