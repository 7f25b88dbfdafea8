"""Words as the ESCO matcher compares them: folded, stemmed, cut into trigrams.

A client writes "olin hitsaajana", "sahkoasentaja" or "I was a welderr"; the
labels say "hitsaaja", "sähköasentaja" and "welder". Folding drops case and
dots, Snowball stems drop Finnish case endings, and character trigrams of the
stems forgive typos and the halves of compound words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import snowballstemmer
import yaml

COLLOQUIAL = Path(__file__).parent / "data" / "colloquial.yaml"

# Languages with a Snowball stemmer, by ESCO's and Polku's codes.
STEMMERS = {
    "fi": "finnish",
    "sv": "swedish",
    "en": "english",
    "et": "estonian",
    "ru": "russian",
    "ar": "arabic",
    "fa": "persian",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
    "pt": "portuguese",
    "no": "norwegian",
    "da": "danish",
    "pl": "polish",
    "lt": "lithuanian",
    "hu": "hungarian",
    "ro": "romanian",
    "el": "greek",
    "cs": "czech",
}

# What clients write around a job or skill, which no label holds.
STOPWORDS = {
    "fi": """olin olen oli olimme ollut olla ole en ei että ja tai sekä myös mutta
        minä mä mie minulla minun mulla mun meillä työskentelin työskennellyt
        työskentelen työskennellä töissä töitä työssä työnä työtä tein teen tehnyt
        haluan haluaisin haluisin haluaa voisin voin osaan osaa osata osaamista
        vuotta vuoden vuosi vuosia kuukautta ennen nyt siellä täällä kanssa hyvin
        paljon vähän kuten esim esimerkiksi alalla alalta ammatiksi ammatti
        ammattini koulutus kokemusta kokemus""",
    "sv": """jag var är har hade jobbade jobbat jobbar arbetade arbetat arbetar
        som en ett i på och eller med kan vill skulle kunna år månader inom
        också mycket erfarenhet min mitt mina""",
    "en": """i im i'm am was were is are be been worked work working works job
        jobs as a an the in at on for and or with can could have has had my me
        of to years year months experience know would like want also some
        very much from there here before now""",
}

# Where one message names several jobs or skills.
SEPARATORS = re.compile(
    r"[,;/+&\n]|\b(?:ja|sekä|tai|and|or|och|eller|samt|plus)\b", re.IGNORECASE
)
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")


def fold(text: str) -> str:
    """Lower-case and strip diacritics: "Sähköasentaja" and "sahkoasentaja" meet."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())

    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return WORD.findall(text.casefold())


@cache
def _stemmer(language: str) -> snowballstemmer.stemmer | None:
    name = STEMMERS.get(language)

    return snowballstemmer.stemmer(name) if name else None


@cache
def _stopwords(language: str) -> frozenset[str]:
    return frozenset(STOPWORDS.get(language, "").split())


def stems(text: str, language: str, *, drop_stopwords: bool = False) -> list[str]:
    """Return the folded stems of `text`'s words, stemmed as `language`."""
    stemmer = _stemmer(language)
    stop = _stopwords(language) if drop_stopwords else frozenset()
    found = [word for word in words(text) if word not in stop]
    if stemmer is not None:
        found = stemmer.stemWords(found)

    return [fold(stem) for stem in found if stem]


def trigrams(stemmed: list[str]) -> set[str]:
    """Return the character trigrams of each stem, marked at both ends."""
    grams: set[str] = set()
    for stem in stemmed:
        marked = f"#{stem}#"
        grams.update(marked[i : i + 3] for i in range(len(marked) - 2))

    return grams


def parts(text: str) -> list[str]:
    """Split a message that names several jobs or skills; keep it whole if one."""
    pieces = [piece.strip() for piece in SEPARATORS.split(text)]

    return [piece for piece in pieces if words(piece)] or [text]


@cache
def _colloquial(language: str) -> tuple[tuple[str, str], ...]:
    words_of = yaml.safe_load(COLLOQUIAL.read_text(encoding="utf-8")) or {}

    return tuple(
        (fold(key), value)
        for key, value in (words_of.get(language) or {}).items()
        if len(key) >= 4
    )


def expand(text: str, language: str) -> str:
    """Add the words ESCO uses for the everyday ones in `text` ("kuski")."""
    folded = [fold(word) for word in re.findall(r"[\w-]+", text.casefold())]
    added = [
        value
        for key, value in _colloquial(language)
        if any(key in word for word in folded)
    ]

    return " ".join([text, *added])
