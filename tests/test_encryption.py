"""Encryption at rest: no phone number, text or answer is readable in the database."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from bot import create_app
from bot.crypto import DecryptionError
from bot.db import get_db
from bot.errors import ConfigError
from bot.models import Message
from bot.settings import load_settings
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import run_worker

SECRET = "Nimeni on Liisa Virtanen"


def raw_dump(app) -> str:
    """Everything stored in Polku's tables, as the database itself holds it."""
    rows = []
    with get_db(app).engine.connect() as connection:
        for table in ("clients", "conversations", "messages"):
            query = text(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
            rows.extend(map(str, connection.execute(query).all()))

    return "\n".join(rows)


@pytest.fixture
def conversation(app, client, twilio) -> None:
    for body in ("Hei", "1", SECRET, "Juva"):
        post_signed(client, "/twilio/messages", message_params(Body=body))
    run_worker(app)


def test_database_holds_no_number_text_or_answer_in_clear(app, conversation):
    dump = raw_dump(app)

    for secret in (CLIENT_NUMBER, CLIENT_NUMBER[1:], "Liisa", "Virtanen", '"juva"'):
        assert secret not in dump
    with get_db(app).session() as session:
        bodies = session.scalars(select(Message.body).order_by(Message.id)).all()
    assert SECRET in bodies


def test_rotation_moves_everything_to_the_new_key(app, conversation):
    old = app.config["POLKU"].encryption_keys
    new_key = Fernet.generate_key().decode()
    both = create_app(
        {
            "settings": app.config["POLKU"].with_overrides(
                encryption_keys=(new_key, *old)
            )
        }
    )

    result = both.test_cli_runner().invoke(args=["keys", "rotate"])

    assert result.exit_code == 0 and "re-encrypted" in result.output
    only_new = create_app(
        {"settings": app.config["POLKU"].with_overrides(encryption_keys=(new_key,))}
    )
    with get_db(only_new).session() as session:
        assert SECRET in session.scalars(select(Message.body)).all()


def test_wrong_key_is_a_clear_error_not_garbage(app, conversation):
    other = (Fernet.generate_key().decode(),)
    wrong = create_app(
        {"settings": app.config["POLKU"].with_overrides(encryption_keys=other)}
    )

    with pytest.raises(DecryptionError, match="keys rotate"):
        with get_db(wrong).session() as session:
            session.scalars(select(Message.body)).all()


def test_bad_key_stops_start_up_with_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="Fernet.generate_key"):
        load_settings({"ENCRYPTION_KEYS": "not-a-key"}, instance_path=tmp_path)


def test_development_key_is_generated_once_and_kept(tmp_path):
    first = load_settings({}, instance_path=tmp_path).encryption_keys

    assert load_settings({}, instance_path=tmp_path).encryption_keys == first
    assert (tmp_path / "encryption_key").stat().st_mode & 0o077 == 0


def test_placeholder_mapping_is_kept_encrypted_with_the_conversation(app, conversation):
    from bot.conversation import anonymise_for
    from bot.gate import release
    from bot.models import Conversation

    with get_db(app).transaction() as session:
        stored = session.scalars(select(Conversation)).one()
        first = anonymise_for(stored, "Soita Matille numeroon 040 765 4321")
    with get_db(app).transaction() as session:
        stored = session.scalars(select(Conversation)).one()
        again = anonymise_for(stored, "Matti ei vastaa numerosta 040 765 4321")

    assert release(first) == "Soita <PERSON_1> numeroon <PHONE_1>"
    assert release(again) == "<PERSON_1> ei vastaa numerosta <PHONE_1>"
    assert "040 765 4321" not in raw_dump(app)
