"""Property-based tests: whatever a client or the internet sends, nothing breaks.

Hypothesis writes the inputs: webhook requests of any shape, message texts in any
script, answers to every step of every flow, texts with personal data planted in
them. Few examples each (they run real requests and workers); no example database.
"""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from urllib.parse import urlencode

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.anonymiser import anonymise
from bot.conversation import keyword, parse_language_choice
from bot.course import parse_choice
from bot.db import get_db
from bot.models import Client, Message
from bot.queue import get_queue
from flows import load_flows
from flows.answers import (
    AnswerError,
    find_topic,
    looks_like_question,
    normalise,
    parse_answer,
    parse_selection,
)
from tests.factories import message_params, signature
from tests.helpers import run_worker
from translations import LANGUAGES
from translations.translator import restore

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# The app fixture is set up once per test, not per example: each example
# counts the rows before and after itself.
FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
FAST = settings(max_examples=300, deadline=None, database=None)
SLOW = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=FIXTURES
)
WORKER = settings(
    max_examples=12, deadline=None, database=None, suppress_health_check=FIXTURES
)

STEPS = [step for flow in load_flows().flows.values() for step in flow.steps.values()]
NUMBER_STEP = next(step for step in STEPS if step.type == "number")
CODES = [None, *(language.code for language in LANGUAGES)]
TWILIO_FIELDS = (
    "MessageSid", "AccountSid", "From", "To", "Body", "NumMedia", "MessageStatus",
    "ErrorCode", "NumSegments",
)  # fmt: skip
CONTENT_TYPES = (
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=x",
    "application/json",
    "text/plain",
    "",
)
# What a field may hold: anything, numbers of any size, runs of one character.
FIELD_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.builds(str.__mul__, st.sampled_from("9-A "), st.integers(1, 40)),
    st.sampled_from(["", " ", "0", "-1", "1e3", "١٢", "whatsapp:", "+358"]),
)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
# Texts a client might send: any script, emoji, controls, NUL, long digit runs.
MESSAGE_TEXT = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(codec="utf-8"), max_size=80),
    st.text("0123456789١٢٣۴۵ ,.-/", max_size=60),
    # A key held down, or a paste: one character thousands of times.
    st.builds(str.__mul__, st.sampled_from("1٣a "), st.integers(1, 6000)),
    st.sampled_from(["STOP", "APUA", "ALUSTA", "1", "٣", "B1", "3/2025", "<PERSON_1>"]),
)
# Lone surrogates reach Polku only escaped in the web chat's JSON.
CHAT_TEXT = MESSAGE_TEXT | st.text(st.characters(categories=["Cs", "L"]), max_size=20)


def rows(app) -> tuple[int, int]:
    with get_db(app).session() as session:
        count = session.scalar(select(func.count()).select_from(Message))
        return count, session.scalar(select(func.count()).select_from(Client))


# Webhooks: any request, signed or not, gets a 2xx or 4xx and no traceback.


@st.composite
def webhook_requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    path = draw(st.sampled_from(["/twilio/messages"] * 3 + ["/twilio/status"]))
    params = message_params()
    # One field spoilt at a time reaches the checks behind the first ones.
    params[draw(st.sampled_from(TWILIO_FIELDS))] = draw(FIELD_VALUES)
    changes = draw(
        st.dictionaries(
            st.sampled_from(TWILIO_FIELDS) | st.text(max_size=12),
            FIELD_VALUES,
            max_size=3,
        )
    )
    params.update(changes)
    for name in draw(st.sets(st.sampled_from(TWILIO_FIELDS), max_size=2)):
        params.pop(name, None)

    # Most requests are signed forms, so that the fields are read at all.
    if draw(st.integers(0, 9)) < 7:
        encoding, content_type, signing = "form", CONTENT_TYPES[0], "valid"
    else:
        encoding = draw(st.sampled_from(["form", "raw", "json"]))
        content_type = draw(st.sampled_from(CONTENT_TYPES) | HEADER_TEXT)
        signing = draw(st.sampled_from(["valid", "none", "garbage"]))
    if encoding == "form":
        body = urlencode(params).encode()
    elif encoding == "json":
        body = json.dumps(params).encode()
    else:
        body = draw(st.binary(max_size=200) | st.just(b"Body=\xed\xa0\x80&From=1"))
    headers = {"Content-Type": content_type}
    if signing == "valid":
        headers["X-Twilio-Signature"] = signature(path, params)
    elif signing == "garbage":
        headers["X-Twilio-Signature"] = draw(HEADER_TEXT)

    return path, body, headers


def signed_form(**fields: str) -> tuple[str, bytes, dict[str, str]]:
    """A message signed like Twilio's, with `fields` changed."""
    params = message_params(**fields)
    headers = {
        "Content-Type": CONTENT_TYPES[0],
        "X-Twilio-Signature": signature("/twilio/messages", params),
    }

    return "/twilio/messages", urlencode(params).encode(), headers


@SQLITE
@SLOW
@given(sent=webhook_requests())
# Found by this test: a number too large for the column was a 500.
@example(sent=signed_form(NumMedia="9" * 20))
def test_webhook_never_fails_and_a_refused_request_stores_nothing(app, sent):
    path, body, headers = sent
    before = rows(app)

    response = app.test_client().post(path, data=body, headers=headers)

    assert response.status_code < 500
    assert b"Traceback" not in response.data
    if response.status_code not in (200, 204):
        assert rows(app) == before


@SQLITE
@SLOW
@given(body=st.binary(max_size=300), content_type=HEADER_TEXT)
def test_web_chat_never_fails_on_any_body(app, body, content_type):
    before = rows(app)

    response = app.test_client().post(
        "/chat/messages", data=body, headers={"Content-Type": content_type}
    )

    assert response.status_code < 500
    if response.status_code not in (200, 201):
        assert rows(app) == before


# A valid message with any text is stored once and answered by a real worker.

NUMBERS = itertools.count(1_000_000)


@SQLITE
@WORKER
@given(
    channel=st.sampled_from(["sms", "web"]),
    chosen=st.booleans(),
    texts=st.lists(
        CHAT_TEXT.filter(lambda t: t[:1600].strip()), min_size=1, max_size=2
    ),
)
# Found by this test: a lone surrogate could not be encrypted, a 500.
@example(channel="web", chosen=False, texts=["hei \ud800"])
def test_any_text_is_stored_once_and_answered(app, channel, chosen, texts):
    # A fresh client each time; after "1" (Finnish) the texts answer the interview.
    bodies = ["Hei", "1", *texts] if chosen else texts
    client = app.test_client()
    sender = f"+35840{next(NUMBERS)}"
    for number, body in enumerate(bodies):
        if channel == "sms":
            # Twilio posts UTF-8: a surrogate cannot be in it.
            body = body.encode("utf-8", "replace").decode()
            params = message_params(Body=body, From=sender)
            headers = {"X-Twilio-Signature": signature("/twilio/messages", params)}
            response = client.post("/twilio/messages", data=params, headers=headers)
            assert response.status_code == 200
        else:
            message = {"id": f"fuzz{sender[1:]}-{number}", "text": body[:1600]}
            response = client.post("/chat/messages", json=message)
            assert response.status_code == 201, response.data
    run_worker(app)

    with get_db(app).session() as session:
        mine = session.scalars(
            select(Message.status)
            .join(Client, Client.id == Message.client_id)
            .where(Message.direction == "in", Client.id == _last_client(session))
        ).all()
    # Answered, or ignored after STOP; never failed, never left waiting.
    assert len(mine) == len(bodies)
    assert set(mine) <= {"processed", "ignored"}
    assert get_queue(app).failed_job_registry.count == 0


def _last_client(session) -> int:  # noqa: ANN001 - a SQLAlchemy session
    return session.scalar(select(func.max(Client.id)))


# Answer parsing: any text is an answer or a polite re-ask, never a crash.


@FAST
@given(
    step=st.sampled_from(STEPS), answer=MESSAGE_TEXT, language=st.sampled_from(CODES)
)
# Found by this test: Python refuses to read a number of over 4,300 digits.
@example(step=NUMBER_STEP, answer="1" * 5000, language="fi")
def test_any_answer_to_any_step_is_read_or_asked_again(step, answer, language):
    try:
        parse_answer(step, answer, language)
    except AnswerError:
        pass


@FAST
@given(answer=MESSAGE_TEXT, count=st.integers(1, 12))
@example(answer="1 " + "2" * 5000, count=3)
def test_numbered_picks_are_read_or_asked_again(answer, count):
    try:
        picks = parse_selection(answer, count)
    except AnswerError:
        return
    assert picks is None or all(0 <= pick < count for pick in picks)


@FAST
@given(answer=MESSAGE_TEXT, options=st.integers(1, 5))
def test_quiz_choice_and_language_menu_never_raise(answer, options):
    choice = parse_choice(answer, options)

    assert choice is None or 1 <= choice <= options
    assert parse_language_choice(answer) in {None, *(lang.code for lang in LANGUAGES)}
    keyword(answer)
    normalise(answer)
    looks_like_question(answer)
    find_topic({"health": ("tervey", "health care")}, answer)


# The anonymiser: any text passes; planted personal data never comes out.

FILLER = st.text(
    st.characters(
        categories=["L", "Zs", "Po", "So", "Cc"], exclude_characters="@+-._<>"
    ),
    max_size=40,
)
CONTROL = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CENTURY = {1800: "+", 1900: "-", 2000: "A"}


@st.composite
def identity_codes(draw: st.DrawFn) -> str:
    """A valid Finnish personal identity code (henkilötunnus)."""
    born = draw(st.dates(date(1850, 1, 1), date.today() - timedelta(days=1)))
    serial = draw(st.integers(2, 899))
    digits = f"{born:%d%m%y}{serial:03d}"
    sign = CENTURY[born.year // 100 * 100]

    return f"{digits[:6]}{sign}{digits[6:]}{CONTROL[int(digits) % 31]}"


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """A valid Finnish mobile number, written as people write them."""
    prefix = draw(st.sampled_from(["40", "41", "44", "45", "46", "50"]))
    rest = draw(st.text("0123456789", min_size=7, max_size=7))
    number = phonenumbers.parse(f"+358{prefix}{rest}")
    style = draw(st.sampled_from(["e164", "international", "national"]))
    formats = {
        "e164": phonenumbers.PhoneNumberFormat.E164,
        "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        "national": phonenumbers.PhoneNumberFormat.NATIONAL,
    }

    return phonenumbers.format_number(number, formats[style])


EMAILS = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z0-9]{1,8})?", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9]{1,12}", fullmatch=True),
    st.sampled_from(["fi", "com", "net", "org", "ee", "se"]),
)


@FAST
@given(text=st.text(max_size=200))
def test_anonymiser_takes_any_text(text):
    values: dict[str, str] = {}

    anonymised = anonymise(text, {}, values).text

    assert restore(anonymised, anonymised, values) == text or "<" in text


@settings(max_examples=100, deadline=None, database=None)
@given(
    before=FILLER,
    planted=st.lists(
        identity_codes() | phone_numbers() | EMAILS, min_size=1, max_size=3
    ),
    after=FILLER,
)
# The phone library lost a number after other data and a comma.
@example(before="", planted=["010100A002H", "+358 40 0000000", "x0a@a0.fi"], after="")
def test_planted_personal_data_never_comes_out_and_comes_back(before, planted, after):
    text = before + " " + " , ".join(planted) + " " + after
    values: dict[str, str] = {}

    anonymised = anonymise(text, {}, values).text

    for value in planted:
        assert value not in anonymised
    assert restore(anonymised, anonymised, values) == text
