"""The counsellors' case page: accounts, sessions, the audit log, taking a case and
replying to the client in Finnish, translated into their language."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.accounts import new_account, save_account
from bot.db import get_db
from bot.models import AuditEntry, Handoff, Message
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import run_worker

PASSWORD = "oikea hevonen paristo niitti"
# The page's queries are plain; test_handoff.py covers the handoff's locking on
# both databases. One is enough here.
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NAME_UK = "Олена"


@pytest.fixture
def accounts(app: Flask) -> Path:
    path = app.config["POLKU"].accounts
    save_account(path, new_account("anna", "Anna Asiantuntija", ["juva"], PASSWORD))
    save_account(
        path, new_account("kalle", "Kalle Kotoutus", ["integration"], PASSWORD)
    )

    return path


def sms(client: FlaskClient, bodies: list[str]) -> None:
    for body in bodies:
        post_signed(client, "/twilio/messages", message_params(Body=body))


def handed_off(app: Flask, client: FlaskClient, bodies: list[str]) -> Handoff:
    sms(client, bodies)
    run_worker(app, timeout=60)
    with get_db(app).session() as session:
        return session.scalars(select(Handoff)).one()


def sign_in(client: FlaskClient, username: str = "anna", password: str = PASSWORD):  # noqa: ANN201
    return client.post(
        "/counsellor/login", data={"username": username, "password": password}
    )


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


# A Ukrainian client in Juva who gives her name and asks for a person.
JUVA_UK = [
    "Привіт", "4", "3", "35", "1", "3/2025", "1",
    f"Я {NAME_UK}, працювала кухарем", "людина",
]  # fmt: skip


def test_the_page_needs_a_counsellor_signed_in(app, client, accounts):
    assert client.get("/counsellor/").status_code == 302
    assert client.get("/counsellor/cases/P-AAAAAAA").status_code == 302
    wrong = sign_in(client, password="not the password at all")
    assert "väärin" in wrong.get_data(as_text=True)

    assert sign_in(client).status_code == 302
    assert client.get("/counsellor/").status_code == 200


@SQLITE
def test_too_many_wrong_passwords_lock_the_account(app, client, accounts):
    for _ in range(5):
        sign_in(client, password="guessing wrongly again")

    assert sign_in(client).status_code == 200  # refused even with the right one
    assert client.get("/counsellor/").status_code == 302


def test_a_case_shows_contact_details_and_real_words_and_is_audited(
    app, client, accounts
):
    handoff = handed_off(app, client, JUVA_UK)
    page_client = app.test_client()
    sign_in(page_client)

    listing = page_client.get("/counsellor/").get_data(as_text=True)
    assert handoff.reference in listing and NAME_UK not in listing
    page = page_client.get(f"/counsellor/cases/{handoff.reference}")

    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert CLIENT_NUMBER in html  # contact details: only here, never in the e-mail
    assert NAME_UK in html and "&lt;PERSON_1&gt;" not in html
    assert "haastattelu jäi kesken" in html
    with get_db(app).session() as session:
        views = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "case_view")
        ).all()
    assert [(v.actor, handoff.reference in v.reason) for v in views] == [("anna", True)]


@SQLITE
def test_another_teams_case_is_not_found(app, client, accounts):
    handoff = handed_off(app, client, JUVA_UK)
    page_client = app.test_client()
    sign_in(page_client, "kalle")

    assert page_client.get(f"/counsellor/cases/{handoff.reference}").status_code == 404
    assert handoff.reference not in page_client.get("/counsellor/").get_data(True)


@SQLITE
def test_an_idle_session_ends(app, client, accounts):
    sign_in(client)
    with client.session_transaction() as session:
        session["counsellor"] = {**session["counsellor"], "seen": time.time() - 3600}

    assert client.get("/counsellor/").status_code == 302


@SQLITE
def test_taking_a_case_needs_the_form_token(app, client, accounts):
    handoff = handed_off(app, client, JUVA_UK)
    page_client = app.test_client()
    sign_in(page_client)
    page = page_client.get(f"/counsellor/cases/{handoff.reference}").get_data(True)
    path = f"/counsellor/cases/{handoff.reference}/take"

    assert page_client.post(path, data={"csrf": "forged"}).status_code == 400
    assert page_client.post(path, data={"csrf": csrf_of(page)}).status_code == 302

    with get_db(app).session() as session:
        taken = session.get(Handoff, handoff.id)
    assert taken.taken_by == "anna" and taken.taken_at is not None


@SQLITE
def test_a_finnish_reply_reaches_the_client_in_ukrainian(
    app, client, accounts, argos_files, twilio, tmp_path
):
    from tests.argos_packages import build_package
    from translations.argos import install_package, preload

    packages = app.config["POLKU"].packages_dir
    install_package(build_package(tmp_path, "fi", "en", {"kokki": "cook"}), packages)
    install_package(build_package(tmp_path, "en", "uk", {"cook": "кухар"}), packages)
    preload()
    handoff = handed_off(app, client, JUVA_UK)
    page_client = app.test_client()
    sign_in(page_client)
    page = page_client.get(f"/counsellor/cases/{handoff.reference}").get_data(True)

    reply = "Hei! Etsitään sinulle kokki paikka Juvalta."
    posted = page_client.post(
        f"/counsellor/cases/{handoff.reference}/reply",
        data={"csrf": csrf_of(page), "text": reply},
    )
    assert posted.status_code == 302
    run_worker(app, timeout=60)

    last = twilio.bodies_to(CLIENT_NUMBER)[-1]
    assert last.startswith("Повідомлення від вашого консультанта (машинний переклад")
    assert "кухар" in last and "kokki" not in last
    page = page_client.get(f"/counsellor/cases/{handoff.reference}").get_data(True)
    assert reply in page and "кухар" in page
    with get_db(app).session() as session:
        statuses = session.scalars(
            select(Message.status).where(Message.purpose == "counsellor")
        ).all()
    assert statuses == ["sent"]


@SQLITE
def test_an_untranslatable_reply_goes_in_finnish_with_a_note(
    app, client, accounts, twilio
):
    handoff = handed_off(app, client, JUVA_UK)  # no Argos packages here
    page_client = app.test_client()
    sign_in(page_client)
    page = page_client.get(f"/counsellor/cases/{handoff.reference}").get_data(True)

    page_client.post(
        f"/counsellor/cases/{handoff.reference}/reply",
        data={"csrf": csrf_of(page), "text": "Soitan sinulle huomenna."},
    )
    run_worker(app)

    last = twilio.bodies_to(CLIENT_NUMBER)[-1]
    assert "не вдалося перекласти автоматично" in last
    assert last.endswith("Soitan sinulle huomenna.")


@SQLITE
def test_counsellors_are_added_from_the_command_line(app):
    runner = app.test_cli_runner()
    added = runner.invoke(
        args=["counsellors", "add", "liisa", "--name", "Liisa", "--team", "juva"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert added.exit_code == 0, added.output
    assert "liisa  Liisa  juva" in runner.invoke(args=["counsellors", "list"]).output
    stored = app.config["POLKU"].accounts.read_text(encoding="utf-8")
    assert PASSWORD not in stored and "scrypt:" in stored

    short = runner.invoke(
        args=["counsellors", "add", "pekka", "--name", "P", "--team", "juva"],
        input="short\nshort\n",
    )
    assert short.exit_code != 0 and "12 characters" in short.output
    unknown = runner.invoke(
        args=["counsellors", "add", "pekka", "--name", "P", "--team", "nowhere"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert unknown.exit_code != 0 and "no team 'nowhere'" in unknown.output
