"""Polku: the Flask app factory that the web server, workers and CLI share."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from bot import crypto
from bot.settings import Settings, load_settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment, or from `config` (tests, tools).

    `config` holds `Settings` field names as overrides, `environ` to read instead
    of the process environment, or a ready `settings` object. Raises
    `ConfigError` at once when a setting cannot work.
    """
    config = dict(config or {})
    settings: Settings = config.pop("settings", None) or load_settings(**config)

    # Encrypted columns read the keys from the process, whichever app is current.
    crypto.configure(settings.encryption_keys)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        POLKU=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=(settings.public_base_url or "").startswith("https:"),
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
    )

    from bot import channels, cli, conversation, db, logs

    logs.configure_logging(settings)
    # First: whatever runs before a view logs with the request's id.
    logs.init_app(app)
    db.init_app(app)
    channels.init_app(app)
    conversation.init_app(app)
    cli.init_app(app)

    from bot import casepage, coursepage, health, webchat, webhooks

    app.register_blueprint(health.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(webchat.bp)
    app.register_blueprint(casepage.bp)
    app.register_blueprint(coursepage.bp)
    app.register_error_handler(HTTPException, _http_error)

    return app


def _http_error(error: HTTPException) -> Response:
    """Answer errors in plain words, as JSON for the chat API, never a traceback."""
    code = error.code or 500
    description = error.description or error.name
    if request.path.startswith("/chat/"):
        response = jsonify(error=description)
        response.status_code = code
        return response

    return Response(
        f"{code} {error.name}: {description}\n", code, mimetype="text/plain"
    )
