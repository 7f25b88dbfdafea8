"""Counsellors' accounts for Polku's case page, from a YAML file the operator keeps.

`flask --app wsgi counsellors add NAME --team TEAM` writes an account with a
scrypt password hash; nothing else stores a password. Failed logins are
counted in Redis, and an account is locked for a while after too many.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from redis import Redis
from redis.exceptions import RedisError
from werkzeug.security import check_password_hash, generate_password_hash

from bot.errors import ConfigError

logger = logging.getLogger(__name__)

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 12
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
# Checked against when the name is unknown, so both cases take as long.
_DUMMY_HASH = generate_password_hash("polku-no-such-account")


@dataclass(frozen=True)
class Account:
    username: str
    name: str
    teams: tuple[str, ...]
    password_hash: str


def load_accounts(path: Path) -> dict[str, Account]:
    """Read the accounts file; an absent file means no accounts yet."""
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"COUNSELLORS_FILE {path}: cannot be read: {exc}") from exc
    accounts = {}
    for item in raw.get("counsellors") or []:
        try:
            account = Account(
                username=str(item["username"]),
                name=str(item["name"]),
                teams=tuple(map(str, item["teams"])),
                password_hash=str(item["password_hash"]),
            )
        except (KeyError, TypeError):
            raise ConfigError(
                f"COUNSELLORS_FILE {path}: each counsellor needs username, name, "
                "teams and password_hash; add them with `flask counsellors add`"
            ) from None
        accounts[account.username] = account

    return accounts


def save_account(path: Path, account: Account) -> None:
    """Add or replace `account` in the file, readable by its owner only."""
    accounts = load_accounts(path)
    accounts[account.username] = account
    data = {
        "counsellors": [
            {
                "username": a.username,
                "name": a.name,
                "teams": list(a.teams),
                "password_hash": a.password_hash,
            }
            for a in accounts.values()
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    os.chmod(partial, 0o600)
    partial.replace(path)


def new_account(username: str, name: str, teams: list[str], password: str) -> Account:
    """Return an account with the password hashed; raise ValueError if unfit."""
    if not USERNAME.match(username):
        raise ValueError("a username is 2-32 lower-case letters, digits, . _ or -")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    if not teams:
        raise ValueError("a counsellor belongs to at least one team")

    return Account(username, name, tuple(teams), generate_password_hash(password))


def authenticate(
    accounts: dict[str, Account], redis: Redis | None, username: str, password: str
) -> Account | None:
    """Return the account if the password is right and it is not locked."""
    key = f"polku:login-failures:{username.lower()[:64]}"
    if _failures(redis, key) >= MAX_FAILURES:
        logger.warning("counsellor login: account locked after failures")
        return None
    account = accounts.get(username)
    valid = check_password_hash(
        account.password_hash if account else _DUMMY_HASH, password
    )
    if account is not None and valid:
        _forget(redis, key)
        return account
    _count(redis, key)
    logger.info("counsellor login: refused")

    return None


def _failures(redis: Redis | None, key: str) -> int:
    if redis is None:
        return 0
    try:
        return int(redis.get(key) or 0)
    except RedisError:
        return 0


def _count(redis: Redis | None, key: str) -> None:
    if redis is None:
        return
    try:
        redis.incr(key)
        redis.expire(key, LOCK_SECONDS)
    except RedisError:
        logger.warning("counsellor login: could not count a failure")


def _forget(redis: Redis | None, key: str) -> None:
    if redis is None:
        return
    try:
        redis.delete(key)
    except RedisError:
        pass
