"""Machine translation: Argos packages from files, pivots, placeholders, the cache.

Every test runs the real Argos Translate, SentencePiece and CTranslate2 on tiny
packages the suite builds itself (tests/argos_packages.py).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from bot import crypto
from bot.gate import UnsafeTextError, seal
from tests.helpers import ROOT, BurstWorker, collect_garbage
from translations.argos import (
    ArgosBackend,
    PackageError,
    install_package,
    installed_packages,
    route,
)
from translations.argos import _import_argos as import_argos
from translations.translator import (
    CACHE_PREFIX,
    FAILED,
    NOT_TRANSLATED,
    ORIGINAL,
    PLACEHOLDER_LOST,
    TRANSLATED,
    NoBackend,
    Translator,
    restore,
)

UKRAINIAN = "Я працювала кухарем у <ADDRESS_1>. Мене звати <PERSON_1>."
VALUES = {"<ADDRESS_1>": "Києві", "<PERSON_1>": "Олена"}


@pytest.fixture(autouse=True)
def _keys() -> None:
    crypto.configure(("k" * 43 + "=",))


@pytest.fixture
def packages(tmp_path: Path, argos_files: dict[str, Path]) -> Path:
    folder = tmp_path / "packages"
    for archive in argos_files.values():
        install_package(archive, folder)

    return folder


@pytest.fixture
def backend(packages: Path, tmp_path: Path) -> ArgosBackend:
    return ArgosBackend(packages, tmp_path)


class CountingBackend(ArgosBackend):
    """The real backend, counting how often it is asked."""

    calls = 0

    def translate(self, text: str, source: str, target: str) -> str:
        self.calls += 1
        return super().translate(text, source, target)


def test_translation_pivots_through_english_and_restores_the_values(backend):
    result = Translator(backend).translate(seal(UKRAINIAN), "uk", "fi", VALUES)

    assert result.status == TRANSLATED
    assert result.text == "Я працювала kokki у Києві. Мене звати Олена."
    assert backend.route("uk", "fi") == ["uk", "en", "fi"]


def test_client_text_goes_into_english_for_a_model(backend):
    result = Translator(backend).translate(seal(UKRAINIAN), "uk", "en", VALUES)

    assert result.text == "Я працювала cook у Києві. Мене звати Олена."


@pytest.mark.parametrize(
    ("language", "reply"),
    [
        ("fi", "Were you a kokki, Олена?"),
        ("en", "Were you a cook, Олена?"),
        ("ar", None),
    ],
)
def test_a_model_reply_reaches_the_client_translated_or_not_at_all(
    backend, language, reply
):
    english = seal("Were you a cook, <PERSON_1>?")
    translator = Translator(backend)

    assert translator.for_client(english, "en", language, VALUES) == reply


def test_a_translation_that_loses_a_placeholder_is_thrown_away(backend):
    result = Translator(backend).translate(
        seal("Меня зовут <PERSON_1>."), "ru", "fi", {"<PERSON_1>": "Олена"}
    )

    assert (result.status, result.text) == (PLACEHOLDER_LOST, None)


@pytest.mark.parametrize(
    ("source", "target", "status"),
    [
        ("ar", "fi", NOT_TRANSLATED),
        ("fi", "uk", NOT_TRANSLATED),
        ("fi", "fi", ORIGINAL),
    ],
)
def test_a_pair_that_is_not_installed_is_not_an_error(backend, source, target, status):
    result = Translator(backend).translate(seal("مرحبا"), source, target)

    assert (result.status, result.text) == (status, None)


def test_without_a_backend_nothing_is_translated():
    result = Translator(NoBackend()).translate(seal("Привіт"), "uk", "fi")

    assert result.status == NOT_TRANSLATED


def test_a_broken_model_keeps_the_original(backend, packages):
    (packages / "translate-en_fi" / "model" / "model.bin").write_bytes(b"broken")

    result = Translator(backend).translate(seal("I was a cook"), "en", "fi")

    assert (result.status, result.text) == (FAILED, None)


def test_plain_text_never_reaches_the_translator(backend):
    with pytest.raises(UnsafeTextError):
        Translator(backend).translate("Олена", "uk", "fi")  # type: ignore[arg-type]


def test_translations_are_cached_in_redis_encrypted(packages, tmp_path, redis_client):
    redis = redis_client
    redis.flushdb()
    backend = CountingBackend(packages, tmp_path)
    translator = Translator(backend, redis, secret="s", cache_seconds=600)

    first = translator.translate(seal(UKRAINIAN), "uk", "fi", VALUES)
    again = translator.translate(seal(UKRAINIAN), "uk", "fi", {**VALUES})

    assert backend.calls == 1
    assert again == first
    [key] = redis.keys(CACHE_PREFIX + "*")
    assert 0 < redis.ttl(key) <= 600
    assert "kokki" not in redis.get(key).decode()
    assert "kokki" in crypto.decrypt(redis.get(key).decode())


def test_a_new_package_version_is_not_served_from_the_cache(
    packages, tmp_path, redis_client, argos_files
):
    redis = redis_client
    redis.flushdb()
    backend = CountingBackend(packages, tmp_path)
    translator = Translator(backend, redis, secret="s")
    translator.translate(seal("I was a cook"), "en", "fi")

    install_package(argos_files["en_fi"], packages)
    translator.translate(seal("I was a cook"), "en", "fi")

    assert backend.calls == 2


def test_the_cache_is_best_effort(packages, tmp_path):
    down = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    translator = Translator(ArgosBackend(packages, tmp_path), down, secret="s")

    result = translator.translate(seal("I was a cook"), "en", "fi")

    assert (result.status, result.text) == (TRANSLATED, "I was a kokki")


@pytest.mark.parametrize(
    ("translated", "restored"),
    [
        ("Nimeni on <PERSON 1>.", "Nimeni on Olena."),
        ("Nimeni on < person_1 >.", "Nimeni on Olena."),
        ("Nimeni on <PERSON_1>, <PERSON_1>.", "Nimeni on Olena, Olena."),
        ("Nimeni on.", None),
        ("Nimeni on <PERSON_2>.", None),
        ("Nimeni on <PERSON_1> <PHONE_NUMBER_1>.", None),
    ],
)
def test_restore_accepts_respelled_placeholders_and_refuses_lost_ones(
    translated, restored
):
    values = {"<PERSON_1>": "Olena"}

    assert restore(translated, "Мене звати <PERSON_1>.", values) == restored


def test_argos_logs_no_text(backend, caplog):
    caplog.set_level(logging.DEBUG)

    Translator(backend).translate(seal(UKRAINIAN), "uk", "fi", VALUES)

    for secret in ("працювала", "kokki", "Олена", "PERSON"):
        assert secret not in caplog.text


def test_install_replaces_the_same_pair(tmp_path, argos_files):
    folder = tmp_path / "packages"
    install_package(argos_files["uk_en"], folder)
    install_package(argos_files["uk_en"], folder)

    assert [p.pair for p in installed_packages(folder)] == [("uk", "en")]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, content in files.items():
            bundle.writestr(name, content)
    return path


METADATA = json.dumps({"from_code": "uk", "to_code": "fi", "type": "translate"})
COMPLETE = {
    "p/metadata.json": METADATA.encode(),
    "p/model/model.bin": b"x",
    "p/sentencepiece.model": b"x",
}


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        (None, "not a zip"),
        ({"p/metadata.json": METADATA.encode()}, "lacks p/model/model.bin"),
        ({**COMPLETE, "q/other.txt": b"x"}, "exactly one folder"),
        ({**COMPLETE, "p/../../evil.txt": b"x"}, "'..' paths"),
        ({**COMPLETE, "p/metadata.json": b"{not json"}, "not valid JSON"),
        ({**COMPLETE, "p/metadata.json": b'{"type": "sbd"}'}, "only translate"),
        ({k: v for k, v in COMPLETE.items() if "sentence" not in k}, "sentencepiece"),
    ],
)
def test_install_refuses_what_is_not_a_package(tmp_path, files, problem):
    archive = tmp_path / "file.argosmodel"
    if files is None:
        archive.write_text("hello")
    else:
        _zip(archive, files)

    with pytest.raises(PackageError, match=problem):
        install_package(archive, tmp_path / "packages")
    assert installed_packages(tmp_path / "packages") == []
    assert not (tmp_path / "evil.txt").exists()


def test_route_finds_chains_of_installed_pairs():
    pairs = {("uk", "en"), ("en", "fi"), ("ar", "en"), ("fi", "sv")}

    assert route(pairs, "uk", "sv") == ["uk", "en", "fi", "sv"]
    assert route(pairs, "fi", "uk") is None
    assert route(set(), "fi", "fi") == ["fi"]


def test_install_and_status_commands(app, argos_files):
    runner = app.test_cli_runner()
    files = [str(argos_files["uk_en"]), str(argos_files["en_fi"])]

    installed = runner.invoke(args=["translations", "install", *files])
    status = runner.invoke(args=["translations", "status"])

    assert installed.exit_code == 0, installed.output
    assert "installed uk->en" in installed.output
    assert "2 Argos packages" in status.output
    assert "en->fi version 0.0.1" in status.output
    assert "uk uk->en->fi" in status.output
    assert "ar no" in status.output


def test_install_command_reports_a_bad_file_and_installs_the_rest(
    app, argos_files, tmp_path
):
    bad = tmp_path / "bad.argosmodel"
    bad.write_text("not a package")
    runner = app.test_cli_runner()

    result = runner.invoke(
        args=["translations", "install", str(bad), str(argos_files["uk_en"])]
    )

    assert result.exit_code == 1
    assert "bad.argosmodel: not an Argos Translate package" in result.output
    assert "1 of 2 files not installed" in result.output
    assert installed_packages(app.config["POLKU"].packages_dir)[0].pair == ("uk", "en")


# Imports Argos with ARGOS_CHUNK_TYPE=SPACY (whose import would download a model)
# in a process where any connection other than a local socket fails.
OFFLINE = """
import socket, sys
from pathlib import Path

def refuse(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"network use: {address}")
    return connect(self, address)

connect = socket.socket.connect
socket.socket.connect = refuse
from bot import crypto
from bot.gate import seal
from translations.argos import ArgosBackend
from translations.translator import Translator

crypto.configure(("k" * 43 + "=",))
folder = Path(sys.argv[1])
backend = ArgosBackend(folder / "packages", folder)
print(Translator(backend).translate(seal("I was a cook."), "en", "fi").text)
"""


def test_translating_never_touches_the_network(packages):
    env = {**os.environ, "ARGOS_CHUNK_TYPE": "SPACY", "PYTHONPATH": str(ROOT)}

    result = subprocess.run(  # noqa: S603 - this interpreter and our own script
        [sys.executable, "-c", OFFLINE, str(packages.parent)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "I was a kokki."


def test_a_process_forked_after_translating_can_still_translate(backend):
    """RQ forks a work horse per job; OpenMP thread pools would hang it."""
    Translator(backend).translate(seal("I was a cook"), "en", "fi")
    child = os.fork()
    if child == 0:
        result = Translator(backend).translate(seal("I was a cook"), "en", "fi")
        os._exit(0 if result.text == "I was a kokki" else 1)

    for _ in range(300):
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        pytest.fail("the forked process hung translating")
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_work_horse_never_destroys_a_model_its_worker_loaded(backend, redis_client):
    """A model that is garbage in the worker would hang the horse that freed it."""
    Translator(backend).translate(seal("I was a cook"), "en", "fi")
    queue = Queue("polku-test-gc", connection=redis_client)
    queue.empty()
    gc.disable()
    try:
        # Argos's languages and models refer to each other: forgotten, they
        # stay as garbage until the next collection.
        translate = import_argos().translate
        translate.installed_translates.clear()
        translate.get_installed_languages.cache_clear()
        job = queue.enqueue(collect_garbage, job_timeout=10)
        BurstWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        gc.enable()
        gc.collect()

    assert job.get_status(refresh=True) == "finished"
