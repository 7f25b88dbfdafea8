"""Reading answers: numbers, words in many languages, misspellings, dates, levels."""

from __future__ import annotations

from datetime import date

import pytest

from flows import load_flows
from flows.answers import AnswerError, parse_answer
from flows.conditions import parse_condition

FLOW = load_flows().interview


@pytest.mark.parametrize(
    ("step", "answer", "language", "value"),
    [
        ("municipality", "1", "fi", "mikkeli"),
        ("municipality", "asun Mikkelissä", "fi", "mikkeli"),
        ("municipality", "Juvalla", "fi", "juva"),
        ("municipality", "S:t Michel", "sv", "mikkeli"),
        ("municipality", "mantyharju", "en", "mantyharju"),
        ("municipality", "Puumla", "en", "puumala"),
        ("municipality", "8", "en", "other"),
        ("situation", "työtön", "fi", "unemployed"),
        ("situation", "olen työtön", "fi", "unemployed"),
        ("situation", "unemplyed", "en", "unemployed"),
        ("situation", "Без роботи", "uk", "unemployed"),
        ("situation", "٥", "ar", "student"),
        ("situation", "lomautettu", "en", "laid_off"),
        ("finnish_level", "B1", "fi", "B1"),
        ("finnish_level", "c2", "en", "C1"),
        ("finnish_level", "äidinkieli", "fi", "native"),
        ("finnish_level", "ei", "fi", "none"),
        ("finnish_level", "1", "en", "none"),
        ("driving_licence", "2, 3", "fi", ["B", "C"]),
        ("driving_licence", "auto ja bussi", "fi", ["B", "D"]),
        ("driving_licence", "2 4", "en", ["B", "D"]),
        ("commute", "public transport, own car", "en", ["public", "car"]),
        ("degree_abroad", "kyllä", "fi", True),
        ("degree_abroad", "joo", "fi", True),
        ("degree_abroad", "no thanks", "en", False),
        ("degree_abroad", "2", "en", False),
        ("degree_abroad", "нет", "ru", False),
        ("degree_abroad", "بلي", "fa", True),
        ("age", "olen 24 vuotta", "fi", 24),
        ("age", "٢٤", "ar", 24),
        ("situation_since", "3/2025", "fi", "2025-03"),
        ("situation_since", "03.2025", "fi", "2025-03"),
        ("situation_since", "2025-03", "en", "2025-03"),
        ("situation_since", "March 2025", "en", "2025-03"),
        ("situation_since", "maaliskuu 2025", "fi", "2025-03"),
        ("situation_since", "maaliskuuta 2025", "fi", "2025-03"),
        ("situation_since", "2024", "en", "2024"),
        ("recent_jobs", "  siivooja,   hitsaaja ", "fi", "siivooja, hitsaaja"),
    ],
)
def test_answer_is_read_into_the_slot(step, answer, language, value):
    assert parse_answer(FLOW.steps[step], answer, language) == value


@pytest.mark.parametrize(
    ("step", "answer", "key"),
    [
        ("municipality", "9", "flow.reask.choice"),
        ("municipality", "Helsinki", "flow.reask.choice"),
        ("situation", "", "flow.reask.choice"),
        ("driving_licence", "2, 9", "flow.reask.multi_choice"),
        ("degree_abroad", "perhaps", "flow.reask.yes_no"),
        ("age", "twenty", "flow.reask.number"),
        ("age", "12", "flow.reask.number"),
        ("age", "24 or 25", "flow.reask.number"),
        ("situation_since", "13/2025", "flow.reask.month_year"),
        ("situation_since", "3/1850", "flow.reask.month_year"),
        ("situation_since", "last spring", "flow.reask.month_year"),
        ("recent_jobs", " ... ", "flow.reask.text"),
    ],
)
def test_unreadable_answer_asks_again_with_the_right_text(step, answer, key):
    with pytest.raises(AnswerError) as error:
        parse_answer(FLOW.steps[step], answer, "en")

    assert error.value.key == key


@pytest.mark.parametrize(
    ("condition", "slots", "holds"),
    [
        ({"age": {"below": 30}}, {"age": 24}, True),
        ({"age": {"below": 30}}, {}, False),
        ({"age": {"answered": False}}, {}, True),
        ({"finnish_level": {"below": "A2"}}, {"finnish_level": "A1"}, True),
        ({"finnish_level": {"below": "A2"}}, {"finnish_level": "native"}, False),
        ({"arrival_year": {"years_ago_below": 3}}, {"arrival_year": 2025}, True),
        ({"arrival_year": {"years_ago_below": 3}}, {"arrival_year": 2020}, False),
        ({"since": {"months_ago_at_least": 12}}, {"since": "2025-12"}, True),
        ({"since": {"months_ago_at_least": 12}}, {"since": "2026-01"}, False),
        ({"commute": {"contains": "hard"}}, {"commute": ["car", "hard"]}, True),
        ({"jobs": {"mentions": ["yrittäjä"]}}, {"jobs": "Oma yritys, YRITTÄJÄ"}, True),
        ({"any": [{"a": 1}, {"b": 2}]}, {"b": 2}, True),
        ({"not": {"a": 1}}, {"a": 1}, False),
        ({"a": 1, "b": 2}, {"a": 1, "b": 3}, False),
    ],
)
def test_conditions_on_slots(condition, slots, holds):
    assert parse_condition(condition).holds(slots, date(2026, 12, 3)) is holds


@pytest.mark.parametrize(
    ("step", "answer", "language", "value"),
    [
        ("situation_since", "elokuussa 2025", "fi", "2025-08"),
        ("situation_since", "since March 2025", "en", "2025-03"),
        ("situation", "permitterad", "sv", "laid_off"),
        ("education_level", "university", "en", "higher"),
        ("driving_licence", "سيارة", "ar", ["B"]),
        ("working_time", "full time or shifts", "en", ["full_time", "shifts"]),
        ("finnish_level", "fluent", "en", "C1"),
    ],
)
def test_answers_real_clients_type_are_understood(step, answer, language, value):
    assert parse_answer(FLOW.steps[step], answer, language) == value


def test_year_only_counts_from_mid_year():
    condition = parse_condition({"since": {"months_ago_at_least": 12}})

    assert condition.holds({"since": "2020"}, date(2026, 12, 3))
    assert not condition.holds({"since": "2026"}, date(2026, 12, 3))
