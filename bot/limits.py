"""Abuse limits: how fast one sender may write, how much Polku sends, and where.

The webhooks call `screen_inbound` after storing a message and before queueing
it; the send job passes `Limits.gate` to `deliver`; the dialogue asks
`Limits.opening` before a client starts a conversation. Counters live in Redis
under the keyed hash of the address, never the number; without Redis nothing is
limited, since a limit protects the service and must never lose a message.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

from bot import metrics
from bot.channels import SMS, WHATSAPP, get_channels
from bot.conversation import get_dialogue, keyword
from bot.db import Database
from bot.messaging import Hold, mark_limited, queue_outbound
from bot.models import Client, Message
from bot.queue import get_queue
from bot.settings import Settings

logger = logging.getLogger(__name__)

PREFIX = "polku:limit"
METRIC = "polku_limited_total"
# The kinds a limit is reported by (the metric's `kind` label).
INBOUND_RATE, INBOUND_DAILY = "inbound_rate", "inbound_daily"
OUTBOUND_RECIPIENT, OUTBOUND_GLOBAL = "outbound_recipient", "outbound_global"
CONVERSATIONS, COUNTRY = "conversations", "country"
NOTICES = {INBOUND_RATE: "limit.inbound_rate", INBOUND_DAILY: "limit.inbound_daily"}
MINUTE, HOUR, DAY = 60, 3600, 86400
# Sliding windows: each counter is a sorted set of the times of the events of
# the last `span` seconds, by the Redis server's clock (one clock for every
# process). An event is counted in every window, or in none when one is full:
# a message held back does not use up the allowance it waits for.
# ARGV: a unique member, then a limit and a span in ms per key.
TAKE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for i, key in ipairs(KEYS) do
  local span = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 * i]) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, ARGV[2 * i + 1])
end
return 0
"""

# Logged once per outage, per process, not once per message.
_redis_down = False


@dataclass(frozen=True)
class Rule:
    """One counter: at most `limit` events in any `span` seconds for one subject."""

    kind: str
    span: int
    limit: int


@dataclass(frozen=True)
class Verdict:
    """What the limits say about one event: None for `kind` lets it through."""

    kind: str | None = None
    # The first event over the limit in its window: tell the client, warn.
    first: bool = False

    @property
    def limited(self) -> bool:
        return self.kind is not None


ALLOWED = Verdict()


class Limits:
    """The configured limits over one Redis connection (None: none apply)."""

    def __init__(self, settings: Settings, connection: Redis | None):
        self.settings = settings
        self.connection = connection

    def inbound(self, sender: str) -> Verdict:
        """Count one message from `sender` (an address hash) against its limits."""
        settings = self.settings
        per_day = Rule(INBOUND_DAILY, DAY, settings.inbound_per_day)
        per_minute = Rule(INBOUND_RATE, MINUTE, settings.inbound_per_minute)

        return self._take([(per_day, sender), (per_minute, sender)])

    def opening(self, client: Client) -> Verdict:
        """Count a conversation `client` starts; report it when over the limit."""
        rule = Rule(CONVERSATIONS, DAY, self.settings.conversations_per_day)
        verdict = self._take([(rule, client.address_hash)])
        if verdict.limited:
            what = "limit %s: client %s may not start another conversation today"
            _report(verdict, client.channel, what, client.id)

        return verdict

    def outbound(self, recipient: str) -> Verdict:
        """Count one reply to `recipient` (an address hash), and one in all."""
        per_hour = Rule(OUTBOUND_RECIPIENT, HOUR, self.settings.outbound_per_hour)
        per_minute = Rule(OUTBOUND_GLOBAL, MINUTE, self.settings.outbound_per_minute)

        return self._take([(per_hour, recipient), (per_minute, "all")])

    def sms_allowed(self, number: str) -> bool:
        """True if SMS may go to `number` (E.164) by SMS_ALLOWED_COUNTRY_CODES."""
        codes = self.settings.sms_allowed_country_codes
        if codes == ("*",):
            return True

        return any(number.startswith(f"+{code}") for code in codes)

    def gate(self, message: Message, client: Client) -> Hold | None:
        """Hold back a reply over a send limit, or refuse SMS to another country.

        Only SMS and WhatsApp cost money; the web chat is never held.
        """
        if message.channel not in (SMS, WHATSAPP):
            return None
        if message.channel == SMS and not self.sms_allowed(client.address):
            refused = Verdict(COUNTRY, first=True)
            what = "limit %s: message %s refused, not in SMS_ALLOWED_COUNTRY_CODES"
            _report(refused, message.channel, what, message.id)
            return Hold(COUNTRY, refused=True)
        verdict = self.outbound(client.address_hash)
        if not verdict.limited:
            return None
        what = "limit %s: message %s postponed"
        _report(verdict, message.channel, what, message.id)

        return Hold(verdict.kind or "")

    def _take(self, counters: list[tuple[Rule, str]]) -> Verdict:
        """Count one event for each (rule, subject); the first rule over wins."""
        counters = [(rule, subject) for rule, subject in counters if rule.limit > 0]
        if not counters or self.connection is None:
            return ALLOWED
        keys = [f"{PREFIX}:{rule.kind}:{subject}" for rule, subject in counters]
        arguments: list[str | int] = [secrets.token_hex(8)]
        for rule, _ in counters:
            arguments += [rule.limit, rule.span * 1000]
        try:
            over = int(self.connection.eval(TAKE, len(keys), *keys, *arguments))
            if not over:
                _redis_back()
                return ALLOWED
            # The first refusal in a window is the one the client hears of.
            rule = counters[over - 1][0]
            told = f"{keys[over - 1]}:told"
            first = bool(self.connection.set(told, 1, nx=True, ex=rule.span))
        except RedisError as exc:
            _redis_failed(exc)
            return ALLOWED
        _redis_back()

        return Verdict(rule.kind, first)


def get_limits(app: Flask) -> Limits:
    """Return the limits of `app`, counted in its Redis."""
    return Limits(app.config["POLKU"], get_queue(app).connection)


def screen_inbound(
    app: Flask, db: Database, message: Message, sender: str, body: str
) -> bool:
    """Hold `message` back if its sender is over a limit; True if it was held.

    Call it once per new message (not for a webhook Twilio retries). A held
    message stays stored, marked limited, and is never answered; the first one
    in a window brings the client a short notice. STOP always passes: an
    opt-out must never wait. The notice is queued at once, so it may reach the
    client before the answers to their earlier messages.
    """
    if keyword(body) in get_dialogue(app).commands.stop:
        return False
    verdict = get_limits(app).inbound(sender)
    if not verdict.limited:
        return False

    settings = app.config["POLKU"]
    notice = NOTICES[verdict.kind or ""] if verdict.first else None
    channels = get_channels(app)
    replies = mark_limited(db, message.id, notice, channels, settings.service_contact)
    queue_outbound(db, get_queue(app), replies, settings.retry_intervals)
    what = "limit %s: message %s of client %s not answered"
    _report(verdict, message.channel, what, message.id, message.client_id)

    return True


def _report(verdict: Verdict, channel: str, what: str, *ids: int) -> None:
    """Count a limit that held something back; warn once per window, ids only."""
    metrics.count(METRIC, kind=verdict.kind or "", channel=channel)
    level = logging.WARNING if verdict.first else logging.INFO
    logger.log(level, what, verdict.kind, *ids)


def _redis_failed(exc: RedisError) -> None:
    global _redis_down
    if not _redis_down:
        logger.warning("limits: Redis is unreachable, no limits apply: %s", exc)
    _redis_down = True


def _redis_back() -> None:
    global _redis_down
    if _redis_down:
        logger.info("limits: Redis is back; limits apply again")
    _redis_down = False
