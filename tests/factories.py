"""Test data: the fake Twilio account, and webhook requests signed like Twilio's."""

from __future__ import annotations

import secrets

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
PUBLIC_BASE_URL = "https://polku.example.test"
SMS_FROM = "+358401110000"
WHATSAPP_FROM = "+358402220000"
CLIENT_NUMBER = "+358409876543"


def message_params(**fields: str) -> dict[str, str]:
    """Return the form Twilio posts for one inbound SMS, with `fields` changed."""
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": ACCOUNT_SID,
        "From": CLIENT_NUMBER,
        "To": SMS_FROM,
        "Body": "Hei",
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    params.update(fields)

    return params


def whatsapp_params(**fields: str) -> dict[str, str]:
    params = message_params(
        From=f"whatsapp:{CLIENT_NUMBER}", To=f"whatsapp:{WHATSAPP_FROM}"
    )
    params.update(fields)

    return params


def signature(path: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """Sign like Twilio: the public URL of `path` and the form fields."""
    validator = RequestValidator(token)

    return validator.compute_signature(PUBLIC_BASE_URL + path, params)


def post_signed(
    client: FlaskClient,
    path: str,
    params: dict[str, str],
    *,
    signed_as: str | None = None,
) -> TestResponse:
    """POST `params` to `path` with a valid signature (or one for `signed_as`)."""
    sign_path = signed_as or path
    headers = {"X-Twilio-Signature": signature(sign_path, params)}

    return client.post(path, data=params, headers=headers)
