"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import sys

from bot import create_app

try:
    app = create_app()
except Exception as error:
    # `flask --app wsgi doctor` reports what stops the app instead of stopping
    # on it; gunicorn and every other command stop here as before.
    from bot.doctor import doctor_requested, rescue_app

    if not doctor_requested(sys.argv):
        raise
    app = rescue_app(error)
