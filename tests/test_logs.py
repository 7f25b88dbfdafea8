"""No personal data in the logs: not the number, not the text, not on failure."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from tests.factories import CLIENT_NUMBER, message_params, post_signed, signature
from tests.helpers import wait_for, worker_processes

# End to end, the same on either database: the database tests cover PostgreSQL.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

LABELLED = Path(__file__).parent / "data" / "pii" / "labelled.jsonl"

SECRET_TEXT = "Nimeni on Liisa Virtanen ja asun Mikkelissä"


def test_pipeline_logs_ids_but_no_number_or_text(app, client, twilio, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    twilio.fail_next(1, status=500)

    post_signed(client, "/twilio/messages", message_params(Body="Hei"))
    post_signed(client, "/twilio/messages", message_params(Body=SECRET_TEXT))
    client.post("/twilio/messages", data=message_params(Body=SECRET_TEXT))
    with worker_processes(app, 1, log_level="DEBUG"):
        # The greeting (sent on the second try) and the re-asked language menu.
        wait_for(lambda: len(twilio.messages) == 2)

    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert re.search(r"message \d+: received", logged)
    assert "send failed, will retry" in logged
    for secret in (CLIENT_NUMBER, CLIENT_NUMBER[1:], "Liisa", "Virtanen"):
        assert secret not in logged


def test_whole_conversation_full_of_personal_data_leaves_none_in_any_log(
    app, twilio, caplog, capfd
):
    """Real HTTP server (werkzeug), worker processes at DEBUG, RQ: scan every line."""
    caplog.set_level(logging.DEBUG)
    rows = [
        json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()
    ]
    personal = [row for row in rows if row["entities"]][:25]
    bodies = [
        "Hei",
        "1",
        *(row["text"] for row in personal),
        "OMAT TIEDOT",
        "POISTA",
        "kyllä",
    ]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/twilio/messages"
    try:
        for body in bodies:
            params = message_params(Body=body)
            headers = {"X-Twilio-Signature": signature("/twilio/messages", params)}
            # Sign against the public URL the app is configured with.
            assert requests.post(url, data=params, headers=headers, timeout=10).ok
        with worker_processes(app, 2, log_level="DEBUG"):
            wait_for(lambda: any("poistettu" in m.body for m in twilio.messages), 60)
    finally:
        server.shutdown()

    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "GET" in logged or "POST" in logged  # werkzeug's request lines are in
    secrets = {CLIENT_NUMBER, CLIENT_NUMBER[1:]}
    secrets |= {entity["text"] for row in personal for entity in row["entities"]}
    leaked = sorted(secret for secret in secrets if secret in logged)
    assert leaked == []


def test_translating_answers_logs_no_text_even_with_argos_debug_on(
    argos_app, client, caplog, capfd, monkeypatch
):
    """Argos logs what it translates when ARGOS_DEBUG is set; Polku turns it off."""
    from bot.counsellor import PENDING
    from tests.test_multilingual import counsellor_answers

    def translated() -> bool:
        jobs = counsellor_answers(argos_app).get("recent_jobs")
        return jobs is not None and jobs.status != PENDING

    monkeypatch.setenv("ARGOS_DEBUG", "1")
    caplog.set_level(logging.DEBUG)
    cook = "Я працювала кухарем у Києві, мене звати Олена Шевченко."
    for body in ["Привіт, я шукаю роботу в Міккелі", "4", "1", "41", "6", "5", cook]:
        post_signed(client, "/twilio/messages", message_params(Body=body))
    with worker_processes(argos_app, 1, log_level="DEBUG"):
        wait_for(translated, timeout=90)

    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert re.search(r"conversation \d+: translated answers, kept 1", logged)
    assert "kokki" in counsellor_answers(argos_app)["recent_jobs"].text
    for secret in ("кухарем", "kokki", "Олена", "Шевченко", "PERSON_1"):
        assert secret not in logged


@pytest.mark.parametrize("log_json", [False, True])
def test_webhook_log_lines_carry_the_request_id(app, client, capfd, log_json):
    from bot.logs import configure_logging

    configure_logging(app.config["POLKU"].with_overrides(log_json=log_json))
    params = message_params(Body=SECRET_TEXT)
    headers = {
        "X-Twilio-Signature": signature("/twilio/messages", params),
        "X-Request-ID": "edge-7f3a9c21",
    }

    response = client.post("/twilio/messages", data=params, headers=headers)

    assert response.headers["X-Request-ID"] == "edge-7f3a9c21"
    lines = [line for line in capfd.readouterr().err.splitlines() if "received" in line]
    assert len(lines) == 1
    if log_json:
        assert json.loads(lines[0])["request_id"] == "edge-7f3a9c21"
    else:
        assert "[request=edge-7f3a9c21]" in lines[0]


@pytest.mark.parametrize("incoming", ["+358409876543", "358409876543", "a b", "x" * 65])
def test_an_unsafe_request_id_is_replaced_by_a_new_one(client, incoming):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})

    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-ID"])


def test_worker_log_lines_carry_the_conversation_and_job_ids(app, client, capfd):
    from bot.db import get_db
    from bot.logs import configure_logging
    from bot.models import Conversation
    from tests.helpers import run_worker

    # Log to the standard error that capfd reads now.
    configure_logging(app.config["POLKU"])
    post_signed(client, "/twilio/messages", message_params(Body="Hei"))
    run_worker(app)

    with get_db(app).session() as session:
        conversation_id = session.query(Conversation.id).scalar()
    lines = capfd.readouterr().err.splitlines()
    answered = [line for line in lines if re.search(r"message \d+: answered", line)]
    sent = [line for line in lines if re.search(r"message \d+: sent on sms", line)]
    assert answered and sent
    for line in answered + sent:
        assert re.search(
            rf"\[conversation={conversation_id} job=[0-9a-f-]{{36}}\]", line
        )
