"""Argos Translate, the local machine-translation backend: packages on disk, offline.

`translations install` unpacks `.argosmodel` files into ARGOS_PACKAGES_DIR; the
worker translates with them, and Argos pivots through a third language (usually
English) where no direct pair is installed. Nothing is ever downloaded.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bot.errors import PolkuError

logger = logging.getLogger(__name__)

# A real package is about 100 MB unpacked; refuse what could fill the disk.
MAX_UNPACKED_BYTES = 2 * 1024**3
METADATA = "metadata.json"

_lock = threading.Lock()
_configured: dict[str, Any] = {}
# Models a parent process loaded. A fork copies them without their threads, and
# destroying one then waits for those threads forever, so a child keeps them.
_inherited: list[Any] = []


class PackageError(PolkuError):
    """A file is not an Argos Translate package that Polku can install."""


class TranslationBackendError(PolkuError):
    """Argos failed to translate a text; the caller keeps the original."""


@dataclass(frozen=True)
class Package:
    """One installed language pair."""

    source: str
    target: str
    version: str
    path: Path

    @property
    def pair(self) -> tuple[str, str]:
        return (self.source, self.target)

    def size_bytes(self) -> int:
        return sum(
            item.stat().st_size for item in self.path.rglob("*") if item.is_file()
        )


def installed_packages(directory: Path) -> list[Package]:
    """Return the translation packages unpacked in `directory`, by pair.

    Reads only their metadata, so that listing packages costs no model loading.
    A folder without readable metadata is skipped with a warning.
    """
    if not directory.is_dir():
        return []
    packages = []
    for folder in sorted(directory.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        try:
            metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
            packages.append(_package(metadata, folder))
        except (OSError, ValueError, PackageError):
            logger.warning("argos: %s is not a readable package; skipped", folder.name)

    return packages


def _package(metadata: Any, folder: Path) -> Package:
    if not isinstance(metadata, dict):
        raise PackageError(f"{METADATA} must hold a JSON object")
    if metadata.get("type", "translate") != "translate":
        raise PackageError(
            f"is a {metadata.get('type')!r} package; only translate packages are used"
        )
    source, target = metadata.get("from_code"), metadata.get("to_code")
    if not isinstance(source, str) or not isinstance(target, str):
        raise PackageError(f"{METADATA} must name from_code and to_code")

    return Package(source, target, str(metadata.get("package_version", "")), folder)


def install_package(archive: Path, directory: Path) -> Package:
    """Unpack the `.argosmodel` file `archive` into `directory` and return it.

    The file is checked before anything is written: a zip with one folder that
    holds metadata.json, a CTranslate2 model and a SentencePiece or BPE model.
    It is unpacked beside the others and then moved into place, so that a
    worker never sees half a package; an installed package of the same pair is
    replaced. Raises `PackageError` saying what is wrong with the file.
    """
    if not zipfile.is_zipfile(archive):
        raise PackageError(f"{archive}: not an Argos Translate package (not a zip)")
    with zipfile.ZipFile(archive) as bundle:
        root, metadata = _check_archive(archive, bundle)
        try:
            package = _package(metadata, directory / root)
        except PackageError as exc:
            raise PackageError(f"{archive}: {exc}") from None
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=directory))
        try:
            bundle.extractall(staging)
            _replace_pair(directory, package)
            os.replace(staging / root, directory / root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("argos: installed %s->%s", package.source, package.target)

    return package


def _check_archive(archive: Path, bundle: zipfile.ZipFile) -> tuple[str, Any]:
    names = [PurePosixPath(info.filename) for info in bundle.infolist()]
    roots = {name.parts[0] for name in names if name.parts}
    unsafe = [name for name in names if name.is_absolute() or ".." in name.parts]
    if unsafe or len(roots) != 1:
        raise PackageError(
            f"{archive}: a package holds exactly one folder and no absolute or "
            "'..' paths; is this file really an .argosmodel?"
        )
    root = roots.pop()
    files = {str(name) for name in names}
    wanted = [f"{root}/{METADATA}", f"{root}/model/model.bin"]
    missing = [name for name in wanted if name not in files]
    tokenizers = {f"{root}/sentencepiece.model", f"{root}/bpe.model"}
    if missing or not files & tokenizers:
        lacking = ", ".join(missing) or "sentencepiece.model or bpe.model"
        raise PackageError(
            f"{archive}: not an Argos Translate package; lacks {lacking}"
        )
    if sum(info.file_size for info in bundle.infolist()) > MAX_UNPACKED_BYTES:
        raise PackageError(f"{archive}: unpacks to more than 2 GB; refused")
    try:
        metadata = json.loads(bundle.read(f"{root}/{METADATA}").decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PackageError(f"{archive}: {METADATA} is not valid JSON") from exc

    return root, metadata


def _replace_pair(directory: Path, package: Package) -> None:
    for old in installed_packages(directory):
        if old.pair == package.pair:
            shutil.rmtree(old.path)
            logger.info("argos: replaced %s->%s", old.source, old.target)


def route(pairs: set[tuple[str, str]], source: str, target: str) -> list[str] | None:
    """Return the languages a translation passes through, or None if it can't.

    Argos chains installed pairs itself (uk->en->fi); this finds whether such a
    chain exists without loading anything.
    """
    if source == target:
        return [source]
    came_from: dict[str, str | None] = {source: None}
    todo = deque([source])
    while todo:
        language = todo.popleft()
        for start, end in sorted(pairs):
            if start != language or end in came_from:
                continue
            came_from[end] = language
            if end == target:
                path = [end]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
            todo.append(end)

    return None


class ArgosBackend:
    """Translate with the Argos packages installed in one folder."""

    name = "argos"

    def __init__(self, packages_dir: Path, work_dir: Path):
        self.packages_dir = packages_dir
        self.work_dir = work_dir

    def packages(self) -> list[Package]:
        return installed_packages(self.packages_dir)

    def route(self, source: str, target: str) -> list[str] | None:
        return route({package.pair for package in self.packages()}, source, target)

    def fingerprint(self) -> str:
        """Return what identifies the installed models, for cache keys."""
        return ",".join(
            f"{p.source}-{p.target}@{p.version}:{p.path.stat().st_mtime_ns}"
            for p in self.packages()
        )

    def translate(self, text: str, source: str, target: str) -> str:
        """Translate `text`; raise `TranslationBackendError` if Argos fails."""
        translate = _argos(self.packages_dir, self.work_dir, self.fingerprint())
        try:
            translation = translate.get_translation_from_codes(source, target)
            if translation is None:
                raise TranslationBackendError(f"no installed route {source}->{target}")
            return translation.translate(text)
        except TranslationBackendError:
            raise
        except Exception as exc:
            # Argos and CTranslate2 raise anything; the message is not logged,
            # since it might quote the text.
            raise TranslationBackendError(
                f"Argos failed to translate {source}->{target}: {type(exc).__name__}"
            ) from exc


def preload() -> None:
    """Import Argos now (5 s), before the worker forks: each job then starts warm.

    Models are loaded in the job itself: CTranslate2's threads do not survive a
    fork, so a model loaded before it would hang the work horse.
    """
    _import_argos()


def _import_argos() -> Any:
    # Argos reads its settings when first imported. With ARGOS_CHUNK_TYPE=SPACY
    # the import itself downloads a spaCy model, so import with another
    # splitter and switch afterwards; see _argos.
    if os.environ.get("ARGOS_CHUNK_TYPE", "").upper() == "SPACY":
        os.environ["ARGOS_CHUNK_TYPE"] = "MINISBD"
    import argostranslate.sbd
    import argostranslate.settings
    import argostranslate.translate

    # Argos logs every text it translates at INFO; nothing of that may reach a log.
    for name in ("argostranslate", "argostranslate.utils", "stanza"):
        logging.getLogger(name).setLevel(logging.WARNING)

    return argostranslate


def _argos(packages_dir: Path, work_dir: Path, fingerprint: str) -> Any:
    """Return Argos's translate module, set up for `packages_dir`, offline.

    Argos keeps its settings in module globals, so they are set here, once per
    folder and again whenever its packages change.
    """
    with _lock:
        argos = _import_argos()
        # Per process too: a model loaded before a fork has lost its threads.
        key = f"{os.getpid()}|{packages_dir}|{fingerprint}"
        if _configured.get("key") == key:
            return argos.translate
        settings = argos.settings
        # Local models only: never LibreTranslate's or OpenAI's API, whatever the
        # environment says, and spaCy's rule-based sentence splitter, since the
        # default one (MiniSBD) downloads its model on first use.
        settings.model_provider = settings.ModelProvider.OPENNMT
        settings.chunk_type = settings.ChunkType.SPACY
        settings.debug = False
        # One thread per translation; several workers use several cores. A
        # process that ran CTranslate2's OpenMP threads hangs every child it
        # forks afterwards (a work horse forked after `chat` or a test did).
        settings.intra_threads = 1
        settings.inter_threads = 1
        argos.sbd._cached_spacy_path = _sentencizer(work_dir)
        settings.package_data_dir = packages_dir
        settings.package_dirs = [packages_dir]
        _drop_models(argos.translate, str(_configured.get("key", "")))
        _configured["key"] = key
        logger.info("argos: using %d packages", len(installed_packages(packages_dir)))

    return argos.translate


def _drop_models(translate: Any, previous_key: str) -> None:
    """Forget Argos's loaded models, destroying them only in their own process."""
    loaded = list(translate.installed_translates)
    translate.installed_translates.clear()
    translate.get_installed_languages.cache_clear()
    if previous_key.partition("|")[0] != str(os.getpid()):
        _inherited.extend(loaded)
        return
    del loaded
    # Their threads exist here: let them go now, not in a child after a fork.
    gc.collect()


def _sentencizer(work_dir: Path) -> Path:
    """Return a blank multilingual spaCy pipeline; Argos adds its sentencizer."""
    path = work_dir / "argos-sentencizer"
    if not (path / "config.cfg").exists():
        import spacy

        work_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".sentencizer-", dir=work_dir))
        spacy.blank("xx").to_disk(staging)
        try:
            os.replace(staging, path)
        except OSError:
            # Another process wrote it first; theirs is the same.
            shutil.rmtree(staging, ignore_errors=True)

    return path
