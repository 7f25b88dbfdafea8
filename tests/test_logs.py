"""No personal data in the logs: not the number, not the text, not on failure."""

from __future__ import annotations

import logging
import re

from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import wait_for, worker_processes

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
