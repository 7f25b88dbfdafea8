"""The anonymiser on the labelled messages, and the cases that must never go wrong."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot.anonymiser import anonymise, find_personal_data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from anonymiser import evaluate, ratio  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "pii" / "labelled.jsonl"


@pytest.fixture(scope="module")
def scores() -> dict:
    rows = [
        json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()
    ]
    return evaluate(rows)


@pytest.mark.parametrize(
    ("kind", "minimum"),
    [
        ("FI_PERSONAL_ID", 0.98),
        ("PHONE", 0.98),
        ("EMAIL", 0.98),
        ("IBAN", 0.98),
        ("PERSON", 0.9),
    ],
)
def test_recall_on_the_labelled_set(scores, kind, minimum):
    found, total = ratio(scores["recall"], kind)

    assert total and found / total >= minimum


def test_precision_on_the_labelled_set(scores):
    right, total = ratio(scores["precision"], None)

    assert right / total >= 0.95


@pytest.mark.parametrize(
    "text",
    [
        "Olen ollut työttömänä vuodesta 2019, palkka 2500 €/kk, klo 8-16.",
        "Suomen kieleni on tasolla B1 ja minulla on C-kortti.",
        "Asun postinumeroalueella 50100 Mikkelissä ja aloitan 1.9.2024.",
        "Toivon, että saan töitä Lidlistä tai K-Marketista.",
        "I worked 40 h/week at 14,50 e/h in 2021.",
    ],
)
def test_ordinary_numbers_and_words_survive(text):
    assert find_personal_data(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Soita Matille 040 123 4567", "Soita <PERSON_1> <PHONE_1>"),
        ("Virtasen hetu on 131052-308T", "<PERSON_1> hetu on <FI_PERSONAL_ID_1>"),
        ("меня зовут Олена Коваленко", "меня зовут <PERSON_1>"),
        ("اسمي أحمد حسن", "اسمي <PERSON_1>"),
        (
            "Tilini FI21 1234 5600 0007 85, y-tunnus 0737546-2",
            "Tilini <IBAN_1>, y-tunnus <BUSINESS_ID_1>",
        ),
        (
            "puhelin +358 40 123 4567, posti maija@example.fi",
            "puhelin <PHONE_1>, posti <EMAIL_1>",
        ),
        (
            "Asun osoitteessa Otavankatu 4 B 12, 50100 Mikkeli.",
            "Asun osoitteessa <ADDRESS_1>.",
        ),
        ("Synnyin 12.3.1985 Kiovassa.", "Synnyin <DATE_OF_BIRTH_1> Kiovassa."),
        ("Passin numero on FP1234567.", "Passin numero on <DOCUMENT_1>."),
    ],
)
def test_personal_data_becomes_typed_placeholders(text, expected):
    assert anonymise(text).text == expected


def test_the_data_protection_officer_can_try_it_from_the_command_line(app):
    runner = app.test_cli_runner()

    result = runner.invoke(
        args=["anonymise"], input="Olen Liisa, puh 040 123 4567\nLiisa soittaa taas\n"
    )

    assert result.output == "Olen <PERSON_1>, puh <PHONE_1>\n<PERSON_1> soittaa taas\n"
