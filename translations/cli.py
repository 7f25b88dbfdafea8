"""`flask --app wsgi translations status|install`: catalogues and translation models.

For translators and the team: per language, texts reviewed, machine-drafted and
missing, and what the texts cost as SMS (GSM-7 or UCS-2 segments); for the
operator, which Argos Translate packages are installed and what they can reach.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from bot.segments import count_segments
from translations import LANGUAGES, catalogue_status, load_catalogue
from translations.argos import PackageError, install_package, installed_packages, route

translations_cli = AppGroup(
    "translations", help="Report on the text catalogues and translation packages."
)

# Texts longer than this many segments are flagged: every SMS costs money.
SEGMENT_LIMIT = 2


@translations_cli.command("status")
@click.option("--long", "show_long", is_flag=True, help="List texts over 2 segments.")
def status(show_long: bool) -> None:
    """Print reviewed, drafted and missing texts and their SMS cost per language."""
    header = f"{'language':<10} {'reviewed':>8} {'drafted':>8} {'missing':>8}"
    click.echo(f"{header} {'GSM-7':>6} {'UCS-2':>6} {'segments':>9} {'over 2':>7}")
    for language in LANGUAGES:
        report = catalogue_status(language.code)
        texts = {
            key: entry.text
            for key, entry in load_catalogue(language.code).items()
            if not key.startswith(("web.", "command.", "common."))
            or key == "common.yes"
        }
        counts = {key: count_segments(value) for key, value in texts.items()}
        gsm = sum(1 for count in counts.values() if count.encoding == "GSM-7")
        over = sorted(key for key, c in counts.items() if c.segments > SEGMENT_LIMIT)
        name = language.code + (" (partial)" if language.partial else "")
        click.echo(
            f"{name:<10} {report.reviewed:>8} {report.drafted:>8} "
            f"{len(report.missing):>8} {gsm:>6} {len(counts) - gsm:>6} "
            f"{sum(c.segments for c in counts.values()):>9} {len(over):>7}"
        )
        if show_long and over:
            for key in over:
                click.echo(f"    {key}: {counts[key].segments} segments")
        if report.missing:
            click.echo(f"    missing: {', '.join(report.missing)}")
    _machine_translation_status()


def _machine_translation_status() -> None:
    settings = current_app.config["POLKU"]
    packages = installed_packages(settings.packages_dir)
    click.echo(
        f"machine translation: {settings.translator}, "
        f"{len(packages)} Argos packages in {settings.packages_dir}"
    )
    for package in packages:
        size = package.size_bytes() / 1024**2
        click.echo(
            f"    {package.source}->{package.target} "
            f"version {package.version or '?'}, {size:.0f} MB"
        )
    if settings.translator == "none":
        return
    pairs = {package.pair for package in packages}
    for target in ("fi", "en"):
        reach = []
        for language in LANGUAGES:
            path = route(pairs, language.code, target)
            if language.code != target:
                reach.append(f"{language.code} {'->'.join(path) if path else 'no'}")
        click.echo(f"    into {target}: {', '.join(reach)}")


@translations_cli.command("install")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)
)
def install(files: tuple[str, ...]) -> None:
    """Install Argos Translate packages (.argosmodel files) for the workers.

    Restart the workers afterwards, or they pick the packages up at their next
    translation. Nothing is downloaded: get the files on a machine that has
    internet access and copy them here.
    """
    directory = current_app.config["POLKU"].packages_dir
    failed = 0
    for name in files:
        try:
            package = install_package(Path(name), directory)
        except PackageError as exc:
            click.echo(f"error: {exc}", err=True)
            failed += 1
            continue
        click.echo(f"installed {package.source}->{package.target} from {name}")
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} files not installed")
