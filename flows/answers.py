"""Reading a client's answer to one step: numbers, words, misspellings, dates.

The engine calls `parse_answer`; it returns the slot value or raises
`AnswerError` carrying the catalogue key and values of a polite re-ask. Choices
accept the option's number, its label in the client's language (or Finnish or
English), a known alias, or a close misspelling.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from datetime import date
from typing import Any

from babel.dates import get_month_names

from flows.model import CHOICE_TYPES, Choice, Step
from translations import fold, text, words

PUNCTUATION = ".,;:!?()[]\"'«»“”„-–—،؛؟"
# Between options in "1, 3", "auto ja bussi", "car and bus".
SEPARATORS = re.compile(
    r"\s*(?:[,;/+&]|\b(?:and|or|ja|tai|och|eller|и|или|і|або|та|و|أو|یا|iyo|ama|või)\b)\s*"
)
BRACKETS = re.compile(r"\s*\([^)]*\)")
CEFR = re.compile(r"\b([abc])\s?([12])\b", re.IGNORECASE)
MONTH_YEAR = re.compile(r"(?<!\d)(\d{1,2})\s*[./\- ]\s*(\d{4})(?!\d)")
YEAR_MONTH = re.compile(r"(?<!\d)(\d{4})\s*[./\-]\s*(\d{1,2})(?!\d)")
FULL_DATE = re.compile(r"^(\d{1,2})\s*[./\-]\s*(\d{1,2})\s*[./\-]\s*(\d{4})$")
ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
FIRST_YEAR, MAX_TEXT = 1900, 1000
# No answer is a number this long; Python refuses to read one of 4,300 digits.
MAX_DIGITS = 9
# "the", "and the", "with the", "for the": Arabic writes them joined to the word.
ARABIC_ARTICLE = re.compile(r"^(?:وال|بال|لل|ال)")
QUESTION_MARKS = ("?", "؟", "？")
FUZZY_CUTOFF = 0.8


class AnswerError(ValueError):
    """The answer does not fit the step; `key` and `values` make the re-ask."""

    def __init__(self, key: str, **values: int | str):
        super().__init__(key)
        self.key = key
        self.values = values


def normalise(answer: str) -> str:
    """Return `answer` comparable: NFKC, ASCII digits, trimmed, case-folded."""
    folded = fold(unicodedata.normalize("NFKC", answer)).casefold()
    digits = "".join(
        str(unicodedata.digit(char)) if char.isdigit() else char for char in folded
    )

    return " ".join(digits.split()).strip(PUNCTUATION + " ")


def parse_answer(step: Step, answer: str, language: str | None) -> Any:
    """Return the slot value `answer` gives for `step`, or raise `AnswerError`."""
    cleaned = normalise(answer)
    if step.type in CHOICE_TYPES and step.type != "multi_choice":
        return _single_choice(step, cleaned, language)
    if step.type == "multi_choice":
        return _multi_choice(step, cleaned, language)
    if step.type == "yes_no":
        return _yes_no(cleaned, language)
    if step.type == "number":
        return _number(step, cleaned)
    if step.type == "month_year":
        return _month_year(cleaned, language)
    if step.type == "date":
        return _date(cleaned)

    return _text(answer)


def check_value(step: Step, value: Any) -> Any:
    """Return `value` if it is a valid slot value for `step`, or raise `AnswerError`.

    For values that did not come from the client's keyboard (a language model's
    reading): the same limits as typed answers.
    """
    invalid = AnswerError("flow.reask.text")
    if step.type == "multi_choice":
        if (
            not isinstance(value, list)
            or not value
            or not all(item in step.choice_values for item in value)
        ):
            raise invalid
        return list(dict.fromkeys(value))
    if step.type in CHOICE_TYPES:
        if value not in step.choice_values:
            raise invalid
        return value
    if step.type == "yes_no":
        if not isinstance(value, bool):
            raise invalid
        return value
    if step.type == "number":
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid
        return _number(step, str(value))
    if step.type == "month_year":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}(-\d{2})?", value):
            raise invalid
        return _month_year(value, None)
    if not isinstance(value, str):
        raise invalid

    return _text(value)


def _reask_choice(step: Step) -> AnswerError:
    return AnswerError("flow.reask.choice", count=len(step.choices))


def _labels(choice: Choice, language: str | None) -> set[str]:
    if choice.literal:
        names = {choice.label}
    else:
        names = {text(choice.label, code) for code in {language or "en", "fi", "en"}}
    names.update(choice.aliases)
    names.add(choice.value.replace("_", " "))
    # "Car (B)" is also "Car": people do not type the bracket.
    names.update(BRACKETS.sub("", name) for name in list(names))

    return {normalise(name) for name in names if name}


def _single_choice(step: Step, answer: str, language: str | None) -> str:
    if not answer:
        raise _reask_choice(step)
    if answer.isdigit():
        number = int(answer) if len(answer) <= MAX_DIGITS else 0
        if 1 <= number <= len(step.choices):
            return step.choices[number - 1].value
        raise _reask_choice(step)
    if step.type == "language_level":
        level = _cefr(answer)
        if level:
            return level
        if answer.upper() in words("common.no_words"):
            return "none"

    labels = {label: c.value for c in step.choices for label in _labels(c, language)}
    if answer in labels:
        return labels[answer]
    # "olen työtön", "I am unemployed": exactly one label inside the answer.
    inside = {value for label, value in labels.items() if _contains(answer, label)}
    if len(inside) == 1:
        return inside.pop()
    close = difflib.get_close_matches(answer, list(labels), n=1, cutoff=FUZZY_CUTOFF)
    if close:
        return labels[close[0]]

    raise _reask_choice(step)


def _contains(answer: str, label: str) -> bool:
    pattern = rf"(?<!\w){re.escape(label)}(?!\w)"

    return len(label) >= 3 and re.search(pattern, answer) is not None


def _cefr(answer: str) -> str | None:
    match = CEFR.search(answer)
    if not match:
        return None
    level = match.group(1).upper() + match.group(2)

    return "C1" if level == "C2" else level


def _multi_choice(step: Step, answer: str, language: str | None) -> list[str]:
    reask = AnswerError("flow.reask.multi_choice", count=len(step.choices))
    if not answer:
        raise reask
    try:
        return [_single_choice(step, answer, language)]
    except AnswerError:
        pass

    values: list[str] = []
    for part in filter(None, SEPARATORS.split(answer)):
        try:
            found = [_single_choice(step, part, language)]
        except AnswerError:
            # "1 3" or "car bus": try the words one by one.
            try:
                found = [_single_choice(step, word, language) for word in part.split()]
            except AnswerError:
                raise reask from None
        values.extend(value for value in found if value not in values)
    if not values:
        raise reask

    return values


def _yes_no(answer: str, language: str | None) -> bool:
    word = answer.upper()
    if word in {"1", normalise(text("common.yes", language)).upper()}:
        return True
    if word in {"2", normalise(text("common.no", language)).upper()}:
        return False
    first = word.split(" ")[0] if word else ""
    if word in words("common.yes_words") or first in words("common.yes_words"):
        return True
    if word in words("common.no_words") or first in words("common.no_words"):
        return False

    raise AnswerError("flow.reask.yes_no")


def _number(step: Step, answer: str) -> int:
    low, high = step.minimum or 0, step.maximum or 0
    reask = AnswerError("flow.reask.number", min=low, max=high)
    numbers = re.findall(r"\d+", answer)
    if len(numbers) != 1 or len(numbers[0]) > MAX_DIGITS:
        raise reask
    number = int(numbers[0])
    if not low <= number <= high:
        raise reask

    return number


def _month_names(language: str | None) -> dict[str, int]:
    names: dict[str, int] = {}
    for code in {language or "en", "fi", "en"}:
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                try:
                    months = get_month_names(width, context, locale=code)
                except (ValueError, LookupError):
                    continue
                for number, name in months.items():
                    names[normalise(name)] = number

    return names


def _month_year(answer: str, language: str | None) -> str:
    """Read "3/2025", "2025-03", "March 2025", "elokuussa 2025" or just "2025"."""
    reask = AnswerError("flow.reask.month_year")
    year = month = None
    if match := MONTH_YEAR.search(answer):
        month, year = int(match.group(1)), int(match.group(2))
    elif match := YEAR_MONTH.search(answer):
        year, month = int(match.group(1)), int(match.group(2))
    else:
        years = re.findall(r"(?<!\d)\d{4}(?!\d)", answer)
        if len(years) != 1:
            raise reask
        year = int(years[0])
        month = _month_word(answer, language)
    if not FIRST_YEAR <= year <= date.today().year + 1:
        raise reask
    if month is None:
        # Only the year: the counsellor sees "2024" and can ask for the month.
        return f"{year:04d}"
    if not 1 <= month <= 12:
        raise reask

    return f"{year:04d}-{month:02d}"


def _month_word(answer: str, language: str | None) -> int | None:
    """Find a month's name in `answer`, also inflected ("elokuussa", "марта")."""
    names = _month_names(language)
    for word in re.findall(r"[^\W\d_]+", answer):
        if word in names:
            return names[word]
        stems = [name for name in names if len(name) >= 4 and word.startswith(name)]
        if stems:
            return names[max(stems, key=len)]

    return None


def _date(answer: str) -> str:
    reask = AnswerError("flow.reask.date")
    if match := FULL_DATE.match(answer):
        day, month, year = (int(part) for part in match.groups())
    elif match := ISO_DATE.match(answer):
        year, month, day = (int(part) for part in match.groups())
    else:
        raise reask
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        raise reask from None


def _text(answer: str) -> str:
    cleaned = " ".join(answer.split())
    if not cleaned.strip(PUNCTUATION):
        raise AnswerError("flow.reask.text")

    return cleaned[:MAX_TEXT]


SELECTION = re.compile(r"^\d+(?:(?:\s*[,;/+&]\s*|\s+)\d+)*$")


def parse_selection(answer: str, count: int) -> list[int] | None:
    """Read "1 3", "1,3" or "0" as picks from a numbered list of `count`.

    Return the 0-based picks ([] for 0, "none of these"), None when the answer
    is not a list of numbers (then it is words), or raise `AnswerError` for a
    number that is not on the list.
    """
    cleaned = normalise(answer)
    if not SELECTION.match(cleaned):
        return None
    found = re.findall(r"\d+", cleaned)
    if any(len(n) > MAX_DIGITS for n in found):
        raise AnswerError("esco.reask", count=count)
    numbers = [int(n) for n in found]
    if numbers == [0]:
        return []
    if any(n < 1 or n > count for n in numbers):
        raise AnswerError("esco.reask", count=count)

    return list(dict.fromkeys(n - 1 for n in numbers))


def looks_like_question(answer: str) -> bool:
    """True for a message of two words or more that ends in a question mark."""
    cleaned = answer.strip().rstrip("!. ")

    return cleaned.endswith(QUESTION_MARKS) and len(cleaned.split()) >= 2


def find_topic(topics: dict[str, tuple[str, ...]], message: str) -> str | None:
    """Return the first topic one of whose words begins a word of `message`.

    Topics list the beginnings of words ("tervey" for terveys, terveyden); a
    phrase of several words must appear as it is.
    """
    found = re.findall(r"[\w'’]+", fold(message).casefold())
    joined = " ".join(found)
    tokens = [*found, *(ARABIC_ARTICLE.sub("", token) for token in found)]
    for topic, words_of_topic in topics.items():
        for word in words_of_topic:
            stem = fold(word).casefold()
            if " " in stem:
                if stem in joined:
                    return topic
            elif any(token.startswith(stem) for token in tokens):
                return topic

    return None
