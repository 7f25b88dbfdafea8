"""Polku's exceptions: one base error and a few domain subclasses that carry data.

Vendor errors are wrapped at the boundary (`raise ... from exc`) so callers only
catch these.
"""

from __future__ import annotations


class PolkuError(Exception):
    """Base class of every error Polku raises on purpose."""


class ConfigError(PolkuError):
    """A setting is missing or invalid; the message says which and how to fix it."""


class ChannelError(PolkuError):
    """A message could not be handed to its channel (Twilio, web chat)."""

    def __init__(self, message: str, *, retryable: bool, code: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class RecipientOptedOutError(ChannelError):
    """The provider refuses to deliver because the recipient has opted out."""

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message, retryable=False, code=code)
