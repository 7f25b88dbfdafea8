"""The one door to models and translators: only anonymised text gets through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.anonymiser import anonymise
from bot.gate import AnonymisedText, UnsafeTextError, release

ROOT = Path(__file__).resolve().parent.parent


def test_anonymised_text_passes_the_gate():
    sealed = anonymise("Soita minulle numeroon 040 123 4567")

    assert release(sealed) == "Soita minulle numeroon <PHONE_1>"


@pytest.mark.parametrize("value", ["Liisa Virtanen 040 123 4567", b"bytes", None])
def test_anything_else_is_refused(value):
    with pytest.raises(UnsafeTextError, match="anonymise"):
        release(value)


def test_anonymised_text_cannot_be_made_by_hand():
    with pytest.raises(UnsafeTextError):
        AnonymisedText("Liisa Virtanen")


def test_only_the_anonymiser_seals_text():
    sealing = [
        path.relative_to(ROOT).as_posix()
        for folder in ("bot", "workers", "flows", "translations", "esco")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"\bseal\(|_SEAL\b", path.read_text(encoding="utf-8"))
    ]

    assert sorted(sealing) == ["bot/anonymiser.py", "bot/gate.py"]


def test_placeholders_stay_the_same_within_a_conversation():
    placeholders: dict[str, dict[str, int]] = {}

    first = anonymise("Olen Liisa Virtanen, puh. 040 123 4567", placeholders)
    second = anonymise(
        "Liisa Virtanen täällä taas, uusi numero 050 765 4321", placeholders
    )

    assert release(first) == "Olen <PERSON_1>, puh. <PHONE_1>"
    assert release(second) == "<PERSON_1> täällä taas, uusi numero <PHONE_2>"
    assert placeholders["PERSON"] == {"liisa virtanen": 1}
