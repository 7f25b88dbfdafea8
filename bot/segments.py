"""SMS segment arithmetic: how a reply is billed, and how a long one is split.

Used by the reply step before sending. GSM-7 texts cost 160 septets in one
segment or 153 per segment when concatenated (ä, ö and å are single septets);
anything outside GSM-7 (Cyrillic, Arabic, õ, emoji) is sent as UCS-2 at 70 or 67
UTF-16 units per segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table cost an escape septet plus their own.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

# Twilio accepts at most 1,600 characters in one message body.
MAX_BODY_CHARS = 1600
# Longer concatenated SMS are delivered less reliably; Twilio advises ten at most.
MAX_SEGMENTS = 10

_BREAKS = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?:;،؟۔])\s+"),
    re.compile(r"\s+"),
)


@dataclass(frozen=True)
class SegmentCount:
    """How a text is encoded and how many SMS segments it is billed as."""

    encoding: str
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in text)


def count_segments(text: str) -> SegmentCount:
    """Return the encoding, length in units and billed segments of `text`."""
    if is_gsm7(text):
        units = [2 if char in GSM7_EXTENDED else 1 for char in text]
        return SegmentCount("GSM-7", sum(units), _pack(units, 160, 153))

    units = [2 if ord(char) > 0xFFFF else 1 for char in text]

    return SegmentCount("UCS-2", sum(units), _pack(units, 70, 67))


def _pack(units: list[int], single: int, multi: int) -> int:
    """Count segments; a character that needs two units never straddles two."""
    total = sum(units)
    if total == 0:
        return 1
    if total <= single:
        return 1

    segments, used = 1, 0
    for size in units:
        if used + size > multi:
            segments += 1
            used = 0
        used += size

    return segments


def split_reply(
    text: str,
    *,
    max_chars: int = MAX_BODY_CHARS,
    max_segments: int | None = MAX_SEGMENTS,
) -> list[str]:
    """Split `text` into message bodies that each fit one send.

    Each part has at most `max_chars` characters and, for SMS, at most
    `max_segments` billed segments (pass None for WhatsApp and the web chat).
    Parts break at a paragraph, a line, a sentence or a space, in that order of
    preference; a word is cut only when it alone is longer than a whole part.
    """
    text = text.strip()
    parts: list[str] = []
    while text:
        if _fits(text, max_chars, max_segments):
            parts.append(text)
            break
        cut = _cut_point(text, max_chars, max_segments)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()

    return parts


def _fits(text: str, max_chars: int, max_segments: int | None) -> bool:
    if len(text) > max_chars:
        return False
    if max_segments is None:
        return True

    return count_segments(text).segments <= max_segments


def _longest_fitting_prefix(text: str, max_chars: int, max_segments: int | None) -> int:
    low, high = 1, min(len(text), max_chars)
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(text[:middle], max_chars, max_segments):
            low = middle
        else:
            high = middle - 1

    return low


def _cut_point(text: str, max_chars: int, max_segments: int | None) -> int:
    limit = _longest_fitting_prefix(text, max_chars, max_segments)
    window = text[: limit + 1]
    spaces: list[int] = []
    for pattern in _BREAKS:
        ends = [match.start() for match in pattern.finditer(window) if match.start()]
        # Prefer a strong break, but not one that leaves a tiny first part.
        good = [end for end in ends if end >= limit // 2]
        if good:
            return good[-1]
        spaces = ends
    if spaces:
        return spaces[-1]

    # A single word longer than a whole part is the only thing ever cut.
    return limit
