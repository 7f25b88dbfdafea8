"""SMS and WhatsApp through Twilio's REST API, with the official `twilio` client.

TWILIO_API_URL points the client at Twilio, a proxy, or the local server that the
tests run; Twilio's errors become `ChannelError`s that say whether to retry.
"""

from __future__ import annotations

import logging
from typing import Any

from requests import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.errors import ChannelError, RecipientOptedOutError
from bot.segments import MAX_SEGMENTS
from bot.settings import TWILIO_DEFAULT_API_URL, Settings

logger = logging.getLogger(__name__)

# Twilio's code for "the recipient has replied STOP to this sender".
UNSUBSCRIBED = 21610


class RebasedHttpClient(TwilioHttpClient):
    """Send the requests that would go to api.twilio.com to `base_url` instead."""

    def __init__(self, base_url: str, timeout: float):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_DEFAULT_API_URL):
            url = self.base_url + url[len(TWILIO_DEFAULT_API_URL) :]

        return super().request(method, url, *args, **kwargs)


class TwilioChannel:
    """One Twilio sender: the SMS number or the WhatsApp sender."""

    def __init__(self, settings: Settings, name: str):
        self.name = name
        self.max_segments = MAX_SEGMENTS if name == "sms" else None
        sender = (
            settings.twilio_sms_from if name == "sms" else settings.twilio_whatsapp_from
        )
        self.sender = self._address(sender or "")
        self.status_callback = (
            settings.public_base_url.rstrip("/") + "/twilio/status"
            if settings.public_base_url
            else None
        )
        http_client = RebasedHttpClient(
            settings.twilio_api_url, settings.twilio_timeout
        )
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=http_client,
        )

    def _address(self, number: str) -> str:
        return f"whatsapp:{number}" if self.name == "whatsapp" else number

    def send(self, to: str, body: str) -> str:
        return self._create(body=body, to=to)

    def send_template(self, to: str, content_sid: str, variables: str) -> str:
        """Send an approved template: WhatsApp's only way past its 24-hour window."""
        return self._create(to=to, content_sid=content_sid, content_variables=variables)

    def _create(self, to: str, **content: str) -> str:
        try:
            message = self.client.messages.create(
                to=self._address(to),
                from_=self.sender,
                status_callback=self.status_callback,
                **content,
            )
        except TwilioRestException as exc:
            raise _classify(exc) from exc
        except (TwilioException, RequestException) as exc:
            raise ChannelError(
                f"Twilio could not be reached: {type(exc).__name__}", retryable=True
            ) from exc

        return str(message.sid)


def _classify(exc: TwilioRestException) -> ChannelError:
    code = exc.code if isinstance(exc.code, int) else None
    if code == UNSUBSCRIBED:
        return RecipientOptedOutError("recipient has unsubscribed", code=code)
    retryable = exc.status >= 500 or exc.status == 429

    return ChannelError(
        f"Twilio answered {exc.status} (error {code})", retryable=retryable, code=code
    )
