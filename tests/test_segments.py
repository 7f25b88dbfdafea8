"""SMS segment counting (GSM-7 versus UCS-2) and splitting of long replies."""

from __future__ import annotations

import pytest

from bot.segments import MAX_BODY_CHARS, count_segments, split_reply


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("äöåÄÖÅ" * 26 + "ab", "GSM-7", 158, 1),
        ("€" * 80, "GSM-7", 160, 1),
        ("[" * 81, "GSM-7", 162, 2),
        ("Привет" * 11 + "Прив", "UCS-2", 70, 1),
        ("ж" * 71, "UCS-2", 71, 2),
        ("مرحبا" * 14, "UCS-2", 70, 1),
        ("Tere, õde", "UCS-2", 9, 1),
        ("🙂" * 35, "UCS-2", 70, 1),
        ("🙂" * 36, "UCS-2", 72, 2),
    ],
)
def test_segments_are_counted_as_billed(text, encoding, units, segments):
    count = count_segments(text)

    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_escape_pair_never_straddles_two_segments():
    # 152 plain septets, then a two-septet euro: it must start segment two.
    text = "a" * 152 + "€" + "a" * 10

    assert count_segments(text).segments == 2
    assert count_segments("a" * 153 + "€" + "a" * 140).segments == 2


@pytest.mark.parametrize(
    ("sentence", "max_segments"),
    [
        ("Hyvää päivää, tässä on pitkä viesti. ", 10),
        ("Добрый день, это длинное сообщение. ", 10),
        ("مرحبا، هذه رسالة طويلة جدا. ", 10),
        ("Hello there, this is a long message. ", None),
    ],
)
def test_long_reply_is_split_between_words_within_limits(sentence, max_segments):
    text = sentence * 120

    parts = split_reply(text, max_segments=max_segments)

    assert len(parts) > 1
    assert " ".join(parts).split() == text.split()
    for part in parts:
        assert len(part) <= MAX_BODY_CHARS
        assert part == part.strip()
        if max_segments:
            assert count_segments(part).segments <= max_segments


def test_split_prefers_paragraph_breaks():
    first, second = "A" * 600 + " end.", "B" * 600
    parts = split_reply(f"{first}\n\n{second}", max_chars=1000, max_segments=None)

    assert parts == [first, second]


def test_short_reply_is_one_part():
    assert split_reply("  Kiitos!  ") == ["Kiitos!"]


def test_word_longer_than_a_part_is_the_only_thing_cut():
    url = "https://example.test/" + "x" * 2000

    parts = split_reply(f"See {url}", max_segments=None)

    assert all(len(part) <= MAX_BODY_CHARS for part in parts)
    assert "".join(parts).replace("See", "See ", 1) == f"See {url}"
