"""Translation catalogues: every text Polku sends, in every language it speaks.

The reply step asks `text(key, language)`; catalogues are gettext PO files under
`translations/<code>/LC_MESSAGES/messages.po`, read with Babel when the app starts.
Entries marked fuzzy are machine-drafted and wait for a native speaker's review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

logger = logging.getLogger(__name__)

CATALOGUE_DIR = Path(__file__).parent
FALLBACK = "en"


@dataclass(frozen=True)
class Language:
    """A language Polku speaks, as the client sees it in the language menu."""

    code: str
    native_name: str
    english_name: str
    rtl: bool = False
    # A partial language may lack texts: the client gets English for those,
    # and `translations status` and the flow check report the gaps.
    partial: bool = False


# The order is the language menu's: the two national languages first.
LANGUAGES: tuple[Language, ...] = (
    Language("fi", "Suomi", "Finnish"),
    Language("sv", "Svenska", "Swedish"),
    Language("en", "English", "English"),
    Language("uk", "Українська", "Ukrainian"),
    Language("ru", "Русский", "Russian"),
    Language("ar", "العربية", "Arabic", rtl=True),
    Language("fa", "دری / فارسی", "Dari / Persian", rtl=True),
    Language("so", "Soomaali", "Somali"),
    Language("et", "Eesti", "Estonian"),
)
LANGUAGES_BY_CODE = {language.code: language for language in LANGUAGES}


class MissingTextError(LookupError):
    """A catalogue key exists in no catalogue, not even the fallback."""


@dataclass(frozen=True)
class Entry:
    text: str
    machine_drafted: bool


@cache
def load_catalogue(code: str, domain: str = "messages") -> dict[str, Entry]:
    """Read the PO catalogue of language `code`; an absent file is an empty one.

    Domain "messages" holds what clients read; "counsellor" what counsellors
    read, in Finnish and English only.
    """
    path = CATALOGUE_DIR / code / "LC_MESSAGES" / f"{domain}.po"
    if not path.exists():
        return {}

    with path.open("rb") as handle:
        catalog = read_po(handle, locale=None)

    return {
        message.id: Entry(message.string, message.fuzzy)
        for message in catalog
        if message.id and isinstance(message.id, str) and message.string
    }


def text(key: str, language: str | None, **values: str | int) -> str:
    """Return catalogue text `key` in `language`, with `values` filled in.

    A text missing from the client's catalogue falls back to English and is
    logged, so the client still gets an answer; a key missing everywhere raises.
    """
    code = language if language in LANGUAGES_BY_CODE else FALLBACK
    entry = load_catalogue(code).get(key)
    if entry is None:
        entry = load_catalogue(FALLBACK).get(key)
        if entry is None:
            raise MissingTextError(f"catalogue text {key!r} exists in no catalogue")
        logger.warning("catalogue %s lacks %r; sent the English text", code, key)

    return entry.text.format(**values) if values else entry.text


def counsellor_text(key: str, locale: str = "fi", **values: str | int) -> str:
    """Return counsellor-facing text `key`, in Finnish unless told otherwise."""
    entry = load_catalogue(locale, "counsellor").get(key)
    if entry is None:
        raise MissingTextError(f"counsellor text {key!r} is not in {locale}")

    return entry.text.format(**values) if values else entry.text


# Arabic and Persian keyboards type different code points for the same letters.
_LETTER_VARIANTS = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه"})


def fold(value: str) -> str:
    """Return `value` with letter variants unified, for comparing typed words."""
    return value.translate(_LETTER_VARIANTS)


@cache
def words(key: str) -> frozenset[str]:
    """Return the words listed under `key` in every catalogue, folded, upper case."""
    found: set[str] = set()
    for language in LANGUAGES:
        entry = load_catalogue(language.code).get(key)
        if entry:
            found.update(fold(word.strip()).upper() for word in entry.text.split(","))
    found.discard("")

    return frozenset(found)


@dataclass(frozen=True)
class CatalogueStatus:
    """How complete one language's catalogue is, against the English one."""

    code: str
    reviewed: int
    drafted: int
    missing: tuple[str, ...]


def catalogue_status(code: str) -> CatalogueStatus:
    """Count reviewed, machine-drafted and missing texts of language `code`."""
    english = load_catalogue(FALLBACK)
    catalogue = load_catalogue(code)
    drafted = sum(
        1 for key in english if key in catalogue and catalogue[key].machine_drafted
    )
    reviewed = sum(1 for key in english if key in catalogue) - drafted
    missing = tuple(sorted(key for key in english if key not in catalogue))

    return CatalogueStatus(code, reviewed, drafted, missing)
