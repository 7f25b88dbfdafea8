"""Key rotation for encryption at rest: re-encrypt stored tokens with the first key.

The procedure (README, PRIVACY.md): make a new key, put it first in
ENCRYPTION_KEYS and restart; run `flask --app wsgi keys rotate`; then remove the
old key and restart again.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text

from bot import crypto

logger = logging.getLogger(__name__)

# Every encrypted column: (table, column). A new one must be added here.
ENCRYPTED_COLUMNS = (
    ("clients", "address"),
    ("messages", "body"),
    ("conversations", "state"),
)
BATCH = 500


def rotate_all(engine: Engine) -> int:
    """Re-encrypt every encrypted value with the first key; return how many."""
    total = 0
    for table, column in ENCRYPTED_COLUMNS:
        last_id = 0
        while True:
            with engine.begin() as connection:
                rows = connection.execute(
                    text(
                        f"SELECT id, {column} FROM {table} "  # noqa: S608 - fixed names
                        "WHERE id > :last ORDER BY id LIMIT :batch"
                    ),
                    {"last": last_id, "batch": BATCH},
                ).all()
                for row_id, token in rows:
                    connection.execute(
                        text(f"UPDATE {table} SET {column} = :token WHERE id = :id"),  # noqa: S608
                        {"token": crypto.rotate(token), "id": row_id},
                    )
            if not rows:
                break
            last_id = rows[-1][0]
            total += len(rows)
        logger.info("keys: %s.%s re-encrypted", table, column)

    return total
