"""The anonymiser: personal data out, typed placeholders in, before any model sees text.

Built on Presidio's analyzer with no language model: its pattern recognisers for
phone numbers, e-mail addresses, IBANs and Finnish identity codes, plus ours for
business ids, document numbers, street addresses, dates of birth and names.
The placeholders (`<PERSON_1>`) stay the same within one conversation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import tldextract
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts, NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    FiPersonalIdentityCodeRecognizer,
    IbanRecognizer,
    PhoneRecognizer,
)
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as PresidioResult

from bot.gate import AnonymisedText, seal

LANGUAGE = "xx"  # one analysis for every language: the patterns are the same
NAMES_FILE = Path(__file__).parent / "data" / "names.txt"
# +, a country code, then groups of digits split by one space, dot or hyphen,
# the area code perhaps in brackets: +358 40 123 4567, +44 (20) 7946-0000.
INTERNATIONAL_PHONE = r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w])"
PHONE_REGIONS = ("FI", "SE", "EE", "GB", "DE", "UA", "RU", "SO", "IQ", "SY", "AF", "TR")
# Presidio's names for the entities it finds, and ours.
ENTITY_NAMES = {
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN",
    "FI_PERSONAL_IDENTITY_CODE": "FI_PERSONAL_ID",
}
MIN_SCORE = 0.4

# Words after which any capitalised word (or Arabic-script word) is a name.
NAME_CUES = (
    "nimeni on", "nimi on", "minun nimi on", "terveisin", "ystävällisin terveisin",
    "jag heter", "mitt namn är", "hälsningar", "mvh",
    "my name is", "name is", "regards", "best regards", "kind regards", "thanks",
    "мене звати", "моє ім'я", "меня зовут", "мое имя", "с уважением", "з повагою",
    "اسمي", "الاسم", "مع تحياتي", "شكرا", "شكراً", "نام من", "اسم من", "با احترام",
    "با تشکر", "یا تشکر",
    "magacaygu waa", "magacayga waa", "magacaygu", "mahadsanid",
    "minu nimi on", "lugupidamisega",
    # Relations before a name: "soita veljelleni Matille", "call my friend".
    "ystäväni", "ystävälleni", "veljeni", "veljelleni", "siskoni", "siskolleni",
    "my friend", "my brother", "my sister", "min vän", "min bror", "min syster",
    "мій друг", "мого друга", "мой друг", "моего друга", "брат", "сестра",
    "صديقي", "بصديقي", "أخي", "بأخي", "أختي", "بأختي", "دوستم", "برادرم", "خواهرم",
    "saaxiibkay", "walaalkay", "walaashay", "mu sõber", "mu vend", "mu õde",
)  # fmt: skip
# Words after which a known name counts even if it is also an ordinary word.
# The last two or three words of a message, after the end of a sentence.
SIGN_OFF = re.compile(r"(?:[.!?؟]\s+|\n\s*)([^\W\d_]+(?:[ \-][^\W\d_]+){1,2})[.!]?\s*$")
WEAK_NAME_CUES = (
    "olen", "tässä", "täällä", "jag är", "i am", "i'm", "this is", "it's",
    "я", "это", "це", "أنا", "انا", "من", "waxaan ahay", "aniga", "mina olen",
)  # fmt: skip
# Words before a document number.
DOCUMENT_CUES = (
    "passi", "passport", "pass", "паспорт", "паспорта", "جواز", "پاسپورت",
    "baasaboor", "oleskelulup", "residence permit", "uppehållstillstånd",
    "uppehållskort", "permit card", "посвідк", "дозволу на проживання",
    "вида на жительство", "الإقامة", "اقامت", "sharciga", "dokument",
    "document", "id card", "henkilökortti", "kortin numero", "card number",
    "kortti", "kortin", "card", "карт", "کارت", "بطاقة", "kaarka", "deganaansh",
    "elamisluba", "isikutunnistus",
)  # fmt: skip
BIRTH_CUES = (
    "synnyin", "syntyn", "syntymä", "synt.", "s.", "född", "föddes", "födelse",
    "born", "birth", "dob", "народи", "народж", "родил", "рожд",
    "ولدت", "ميلاد", "تولد", "dhash", "dhalash", "sündi", "sünni",
)  # fmt: skip
MONTHS = (
    r"tammi\w*|helmi\w*|maalis\w*|huhti\w*|touko\w*|kesä\w*|heinä\w*|elo\w*|"
    r"syys\w*|loka\w*|marras\w*|joulu\w*|jan\w*|feb\w*|mar\w*|apr\w*|ma[jy]|"
    r"jun\w*|jul\w*|aug\w*|sep\w*|o[ck]t\w*|nov\w*|dec\w*|dez\w*"
)
DATE = re.compile(
    rf"\b(\d{{1,2}}[./-]\d{{1,2}}[./-](?:19|20)\d{{2}}|(?:19|20)\d{{2}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}"
    rf"|\d{{1,2}}\.?\s+(?:{MONTHS})\s+(?:19|20)\d{{2}})\b",
    re.IGNORECASE,
)
STREET = (
    r"katu|tie|kuja|polku|väylä|raitti|rinne|ranta|kaari|puisto|aukio|tori|"
    r"vägen|gatan|gränd|street|road|avenue|lane|str\.|st\."
)
ADDRESS = re.compile(
    rf"\b[A-ZÄÖÅ][\wäöåÄÖÅ-]*(?:{STREET})\s+\d{{1,4}}[a-zA-Z]?"
    r"(?:\s*(?:-\s*\d+|[A-Z]\s*\d{1,3}|as\.?\s*\d{1,3}))?"
    r"(?:,?\s*\d{5}(?:\s+(?:S:t\s+)?[^\W\d_][\w-]*)?)?",
)
DOCUMENT = re.compile(r"\b(?:[A-Z]{1,3}\s?\d{6,9}|\d{2}\s\d{7})\b")
BUSINESS_ID = r"\b\d{7}-\d\b"
CAPITALISED = re.compile(r"[A-ZÄÖÅÜÉА-ЯЁІЇЄҐ][\w'’-]*")
# A word with inner hyphens and apostrophes ("Al-Hassan"), not a leading dash.
WORD = re.compile(r"[\w'’]+(?:-[\w'’]+)*")
INITIAL = re.compile(r"\b[A-ZÄÖÅА-ЯЁІЇЄ]\.\s*")
ARABIC_WORD = re.compile(r"[\u0600-\u06FF]+")
# Finnish case endings and the stem changes of common name types:
# Virtasen -> Virtanen, Korhoselle -> Korhonen, Matille -> Matti, Liisalle -> Liisa.
FINNISH_ENDINGS = (
    "lle", "lta", "ltä", "lla", "llä", "ssa", "ssä", "sta", "stä", "ksi",
    "n", "na", "nä", "a", "ä", "ta", "tä", "in", "iin", "han", "hen", "hin",
    "seen", "s",
    # Estonian: Kadrile, Kadrilt, Kadriga.
    "le", "lt", "ga", "st",
)  # fmt: skip
CYRILLIC = re.compile(r"[\u0400-\u04FF]")
SLAVIC_ENDINGS = (
    "ою",
    "ею",
    "ой",
    "ей",
    "ом",
    "ем",
    "ої",
    "ії",
    "а",
    "у",
    "ю",
    "е",
    "и",
    "і",
    "ы",
    "ій",
)


@dataclass(frozen=True)
class Found:
    """One piece of personal data in a text."""

    start: int
    end: int
    type: str
    text: str


@dataclass(frozen=True)
class NameBook:
    """Known given names and surnames, and the ones that are also ordinary words."""

    names: frozenset[str]
    ambiguous: frozenset[str]

    @classmethod
    def load(cls, path: Path | None = None) -> NameBook:
        path = path or NAMES_FILE
        names: set[str] = set()
        ambiguous: set[str] = set()
        target = names
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line.startswith("#"):
                target = ambiguous if "ambiguous" in line.casefold() else names
                continue
            if line:
                target.add(_fold(line))

        return cls(frozenset(names), frozenset(ambiguous))

    def canonical(self, name: str) -> str:
        """Return `name` with each word in its nominative form, for comparing."""
        parts = []
        for word in WORD.findall(name):
            folded = _fold(word)
            known = self.names | self.ambiguous
            parts.append(next((f for f in _base_forms(folded) if f in known), folded))

        return " ".join(parts)

    def is_name(self, word: str, *, cued: bool = False) -> bool:
        folded = _fold(word)
        if folded in self.names or (cued and folded in self.ambiguous):
            return True
        if "-" in folded[1:-1]:  # Ulla-Maj, Anna-Liisa
            return all(self.is_name(part, cued=True) for part in folded.split("-"))
        if folded in _common_words():
            # "Aina", "Olla", "Pian": words that only look like inflected names.
            return False
        for form in _base_forms(folded):
            if form in self.names or (cued and form in self.ambiguous):
                return True

        return False


@cache
def _common_words() -> frozenset[str]:
    """Stop words of the languages clients write in, as spaCy ships them."""
    from importlib import import_module

    found: set[str] = set()
    for code in ("fi", "sv", "en", "et", "ru", "uk", "ar", "fa"):
        try:
            module = import_module(f"spacy.lang.{code}.stop_words")
        except ImportError:
            continue
        found.update(word.casefold() for word in module.STOP_WORDS)

    return frozenset(found)


def _fold(word: str) -> str:
    return unicodedata.normalize("NFKC", word).strip(".,:;!?\"'()«»").casefold()


def _base_forms(word: str) -> Iterable[str]:
    """Yield `word` and the nominatives it may be an inflected form of."""
    yield word
    cyrillic = bool(CYRILLIC.search(word))
    endings = SLAVIC_ENDINGS if cyrillic else FINNISH_ENDINGS
    vowels = (
        ("а", "я", "о", "ія", "і", "й", "ий") if cyrillic else ("a", "ä", "i", "o", "e")
    )
    for ending in endings:
        stem = word[: -len(ending)]
        if not word.endswith(ending) or len(stem) < 3:
            continue
        yield stem
        for vowel in vowels:
            yield stem + vowel
        if stem[-1] in "aeiu" and not cyrillic:  # Jaanile -> Jaan
            yield stem[:-1]
        if stem.endswith("se"):  # Virtasen, Korhoselle: -nen names
            yield stem[:-2] + "nen"
        if len(stem) >= 3 and stem[-2] in "tkpl" and stem[-1] in "aeiouyäö":
            # Consonant gradation: Matille -> Matti, Pekalle -> Pekka.
            yield stem[:-1] + stem[-2] + stem[-1]
    for prefix in ("و", "ل", "ب"):
        if word.startswith(prefix) and len(word) > 3:
            yield word[1:]


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recogniser, with the public suffix list it ships.

    The default one tries to download the list at first use, which fails here.
    """

    _extract = tldextract.TLDExtract(suffix_list_urls=())

    def validate_result(self, pattern_text: str) -> bool:
        return self._extract(pattern_text.rsplit("@", 1)[-1]).suffix != ""


class BusinessIdRecognizer(PatternRecognizer):
    """Finnish business ids (Y-tunnus), with the check digit."""

    def __init__(self) -> None:
        super().__init__(
            supported_entity="BUSINESS_ID",
            patterns=[Pattern("business id", BUSINESS_ID, 0.6)],
            supported_language=LANGUAGE,
        )

    def validate_result(self, pattern_text: str) -> bool:
        digits, check = pattern_text[:7], int(pattern_text[-1])
        weights = (7, 9, 10, 5, 8, 4, 2)
        remainder = sum(w * int(d) for w, d in zip(weights, digits, strict=True)) % 11
        if remainder == 1:
            return False

        return check == (0 if remainder == 0 else 11 - remainder)


class InternationalPhoneRecognizer(PatternRecognizer):
    """Numbers written with a + and a country code, however they are grouped.

    The phone library reads most of them, but a number after other data and a
    comma ("010100A002H , +358 40 …") can escape it or lose its first groups.
    """

    def __init__(self) -> None:
        super().__init__(
            supported_entity="PHONE_NUMBER",
            patterns=[Pattern("international phone", INTERNATIONAL_PHONE, 0.6)],
            supported_language=LANGUAGE,
        )

    def validate_result(self, pattern_text: str) -> bool:
        return 8 <= sum(char.isdigit() for char in pattern_text) <= 15


class CuedRecognizer(EntityRecognizer):
    """A pattern that counts only after one of its cue words, within a window."""

    def __init__(self, entity: str, pattern: re.Pattern[str], cues: tuple[str, ...]):
        self.pattern, self.cues, self.entity = pattern, cues, entity
        super().__init__(supported_entities=[entity], supported_language=LANGUAGE)

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        folded = text.casefold()
        results = []
        for match in self.pattern.finditer(text):
            before = folded[max(0, match.start() - 45) : match.start()]
            if any(cue in before for cue in self.cues):
                results.append(
                    RecognizerResult(self.entity, match.start(), match.end(), 0.85)
                )

        return results


class AddressRecognizer(PatternRecognizer):
    def __init__(self) -> None:
        super().__init__(
            supported_entity="ADDRESS",
            patterns=[Pattern("street address", ADDRESS.pattern, 0.7)],
            supported_language=LANGUAGE,
        )


class PersonRecognizer(EntityRecognizer):
    """Names: known given names and surnames (inflected too), or words after a cue."""

    def __init__(self, book: NameBook):
        self.book = book
        super().__init__(supported_entities=["PERSON"], supported_language=LANGUAGE)

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        words = [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]
        strong, weak = (
            _cued_positions(text, NAME_CUES),
            _cued_positions(text, WEAK_NAME_CUES) | _sign_off(text),
        )
        found: list[tuple[int, int]] = []
        index = 0
        while index < len(words):
            start, _, word = words[index]
            if not self._could_be_name(word, start in strong, start in weak):
                index += 1
                continue
            # A name runs on through following names or capitalised words.
            last = index
            while last + 1 < len(words) and self._continues(
                words[last + 1], text, words[last]
            ):
                last += 1
            # A given name before a known surname ("Hodan Cali", "Тарасові
            # Мельнику") belongs to it even if it is also an ordinary word.
            if index > 0 and not (found and found[-1][1] >= words[index - 1][1]):
                previous = words[index - 1]
                if self._continues(words[index], text, previous) and self.book.is_name(
                    previous[2], cued=True
                ):
                    start = previous[0]
            # "А. Петров", "M. Virtanen": an initial before the name belongs to it.
            initial = INITIAL.search(text, 0, start)
            begin = initial.start() if initial and initial.end() == start else start
            found.append((begin, words[last][1]))
            index = last + 1

        return [RecognizerResult("PERSON", s, e, 0.8) for s, e in found]

    def _could_be_name(self, word: str, strongly_cued: bool, weakly_cued: bool) -> bool:
        if any(char.isdigit() for char in word) or len(word) < 2:
            return False
        arabic = bool(ARABIC_WORD.fullmatch(word))
        if not arabic and not word[0].isupper():
            return False
        if self.book.is_name(word, cued=strongly_cued or weakly_cued):
            return True
        # After "my name is", a capitalised word (or any Arabic-script word) is a name.
        return strongly_cued

    def _continues(
        self, following: tuple[int, int, str], text: str, previous: tuple[int, int, str]
    ) -> bool:
        start, _, word = following
        gap = text[previous[1] : start]
        if (
            gap.strip() not in ("", "-")
            or "\n" in gap
            or any(c.isdigit() for c in word)
        ):
            return False
        if ARABIC_WORD.fullmatch(word):
            # After a name: another name (حسن, علي too), or a family name (السعدي).
            return self.book.is_name(word, cued=True) or (
                word.startswith("ال") and len(word) > 3
            )
        if not word[0].isupper() or (word.isupper() and len(word) > 1):
            return False

        return self.book.is_name(word, cued=True) or bool(CAPITALISED.fullmatch(word))


def _cued_positions(text: str, cues: tuple[str, ...]) -> set[int]:
    """Return where the word right after one of `cues` starts."""
    folded = text.casefold()
    positions = set()
    for cue in cues:
        for match in re.finditer(rf"(?<!\w){re.escape(cue)}[\s:,،]+", folded):
            positions.add(match.end())

    return positions


def _sign_off(text: str) -> set[int]:
    """Return where a message's last two or three words start, after a sentence.

    "... (Estonian bank). Mari Tamm": a signature. Names there that are also
    ordinary words count, as after "I am".
    """
    match = SIGN_OFF.search(text)

    return {match.start(1)} if match else set()


@cache
def name_book() -> NameBook:
    return NameBook.load()


@cache
def analyzer() -> AnalyzerEngine:
    """Build the analyzer once per process: recognisers and the name lists."""
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    recognisers: list[EntityRecognizer] = [
        OfflineEmailRecognizer(supported_language=LANGUAGE),
        IbanRecognizer(supported_language=LANGUAGE),
        PhoneRecognizer(supported_language=LANGUAGE, supported_regions=PHONE_REGIONS),
        InternationalPhoneRecognizer(),
        FiPersonalIdentityCodeRecognizer(supported_language=LANGUAGE),
        BusinessIdRecognizer(),
        AddressRecognizer(),
        CuedRecognizer("DOCUMENT", DOCUMENT, DOCUMENT_CUES),
        CuedRecognizer("DATE_OF_BIRTH", DATE, BIRTH_CUES),
        PersonRecognizer(name_book()),
    ]
    for recogniser in recognisers:
        registry.add_recognizer(recogniser)
    engine = NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "none"}])
    engine.load()

    return AnalyzerEngine(
        registry=registry, nlp_engine=engine, supported_languages=[LANGUAGE]
    )


def find_personal_data(text: str) -> list[Found]:
    """Return the personal data in `text`, longest first where spans overlap."""
    # Eastern Arabic digits become 0-9 one for one, so offsets stay valid.
    plain = "".join(
        str(unicodedata.digit(char)) if char.isdigit() else char for char in text
    )
    results = analyzer().analyze(plain, language=LANGUAGE, score_threshold=MIN_SCORE)
    spans = sorted(results, key=lambda r: (-(r.end - r.start), -r.score))
    taken: list[Found] = []
    for result in spans:
        if any(result.start < f.end and f.start < result.end for f in taken):
            continue
        kind = ENTITY_NAMES.get(result.entity_type, result.entity_type)
        if kind == "PHONE" and DATE.fullmatch(plain[result.start : result.end]):
            continue  # "1.9.2024" reads as a number to the phone library
        taken.append(
            Found(result.start, result.end, kind, text[result.start : result.end])
        )

    return sorted(taken, key=lambda found: found.start)


def anonymise(
    text: str,
    placeholders: dict[str, dict[str, int]] | None = None,
    values: dict[str, str] | None = None,
) -> AnonymisedText:
    """Replace personal data in `text` with typed placeholders like `<PERSON_1>`.

    `placeholders` maps type -> value -> number and is updated in place, so that
    the same person is `<PERSON_1>` in every message of a conversation; keep it
    encrypted with the conversation, since it holds the real values. `values`,
    when given, receives each placeholder with the words it replaced in `text`,
    for putting them back into a translation.
    """
    mapping = placeholders if placeholders is not None else {}
    found = find_personal_data(text)
    if not found:
        return seal(text)

    def placeholder(kind: str):  # noqa: ANN202 - Presidio's custom operator
        numbers = mapping.setdefault(kind, {})

        def replace(value: str) -> str:
            # "Matille" and "Matti" are one person: compare nominatives.
            key = name_book().canonical(value) if kind == "PERSON" else value.casefold()
            number = numbers.setdefault(key, len(numbers) + 1)
            if values is not None:
                values.setdefault(f"<{kind}_{number}>", value)
            return f"<{kind}_{number}>"

        return replace

    kinds = {item.type for item in found}
    operators = {
        kind: OperatorConfig("custom", {"lambda": placeholder(kind)}) for kind in kinds
    }
    results = [
        PresidioResult(entity_type=item.type, start=item.start, end=item.end, score=1.0)
        for item in found
    ]
    anonymised = _anonymizer().anonymize(text, results, operators)

    return seal(anonymised.text)


@cache
def _anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()
