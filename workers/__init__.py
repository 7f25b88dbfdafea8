"""RQ job functions: they take ids, open the app's state and call domain code.

A worker process builds the app once, before it forks work horses, so that each
job starts warm; `use_app` lets the CLI and the tests hand over the app they have.
"""

from __future__ import annotations

from flask import Flask

_app: Flask | None = None


def use_app(app: Flask) -> None:
    """Make job functions in this process use `app`."""
    global _app
    _app = app


def get_app() -> Flask:
    """Return the app jobs run in, building it from the environment if needed."""
    global _app
    if _app is None:
        from bot import create_app

        _app = create_app()

    return _app
