"""`flask --app wsgi translations status`: how complete and costly each catalogue is.

For translators and the team: per language, texts reviewed, machine-drafted and
missing, and what the texts cost as SMS (GSM-7 or UCS-2 segments).
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from bot.segments import count_segments
from translations import LANGUAGES, catalogue_status, load_catalogue

translations_cli = AppGroup("translations", help="Report on the text catalogues.")

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
