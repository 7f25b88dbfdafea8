"""The web chat API: same pipeline as SMS, one browser per client, clear errors."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.db import get_db
from bot.models import Client, Message
from tests.helpers import run_worker


def post(client, text: str, message_id: str = "browser-msg-1"):
    return client.post("/chat/messages", json={"id": message_id, "text": text})


def replies(client, after: int = 0) -> list[str]:
    data = client.get(f"/chat/messages?after={after}").get_json()
    return [m["text"] for m in data["messages"] if m["direction"] == "out"]


def test_page_is_a_phone_friendly_chat(client):
    response = client.get("/")

    assert response.status_code == 200
    assert b'name="viewport"' in response.data
    assert b'id="compose"' in response.data


def test_web_chat_goes_through_the_worker(app, client, twilio):
    assert post(client, "Hei").status_code == 201
    run_worker(app)
    post(client, "3", "browser-msg-2")
    run_worker(app)

    first, notice, welcome, question = replies(client)
    assert "1 Suomi" in first
    assert notice.startswith("You are writing with an automated assistant")
    assert welcome.startswith("Welcome!")
    assert question.startswith("Which municipality do you live in?")
    assert twilio.messages == []


def test_right_to_left_language_is_flagged_for_the_page(app, client):
    post(client, "Hei")
    run_worker(app)
    post(client, "6", "browser-msg-2")
    run_worker(app)

    data = client.get("/chat/messages").get_json()
    assert (data["language"], data["rtl"]) == ("ar", True)


def test_browser_retry_of_the_same_message_is_stored_once(app, client):
    assert post(client, "Hei").status_code == 201
    assert post(client, "Hei").status_code == 200

    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_two_browsers_are_two_clients(app):
    post(app.test_client(), "Hei", "browser-a-1")
    post(app.test_client(), "Hei", "browser-b-1")

    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Client)) == 2


def test_other_browser_cannot_reuse_a_message_id(app, client):
    post(client, "Hei", "shared-id-1")

    response = post(app.test_client(), "Hei", "shared-id-1")

    assert response.status_code == 409


def test_new_browser_sees_no_messages(client):
    assert client.get("/chat/messages").get_json()["messages"] == []


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"id": "browser-msg-1", "text": ""}, 400),
        ({"id": "browser-msg-1"}, 400),
        ({"id": "x", "text": "Hei"}, 400),
        ({"id": "browser-msg-1", "text": "a" * 1601}, 413),
        (["not", "an", "object"], 400),
    ],
)
def test_bad_chat_message_gets_a_json_error(app, client, payload, status):
    response = client.post("/chat/messages", json=payload)

    assert response.status_code == status
    assert "error" in response.get_json()
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_privacy_page_is_served_and_linked_from_the_notice(app, client):
    post(client, "Hei")
    run_worker(app)
    post(client, "3", "browser-msg-2")
    run_worker(app)

    notice = replies(client)[1]
    assert "More about your data: https://polku.example.test/privacy" in notice
    page = client.get("/privacy")
    assert page.status_code == 200
    assert "In plain language" in page.get_data(as_text=True)
