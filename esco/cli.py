"""`flask --app wsgi esco import|status|search`: the operator's ESCO commands.

Import the CSV package downloaded from the ESCO portal, see what the index
holds, and try the matcher the interview uses.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from esco import get_matcher
from esco.embeddings import available
from esco.importer import EscoImportError, embed_labels, import_paths
from esco.index import OCCUPATION, SKILL, index_status

esco_cli = AppGroup("esco", help="Import and search ESCO occupations and skills.")


@esco_cli.command("import")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False)
)
@click.option("--esco-version", help="The ESCO version, if no folder name says it.")
@click.option(
    "--embeddings/--no-embeddings",
    default=True,
    show_default=True,
    help="Embed the labels for semantic matching (minutes for all of ESCO).",
)
def import_command(
    paths: tuple[Path, ...], esco_version: str | None, embeddings: bool
) -> None:
    """Import ESCO CSV files (occupations_xx.csv, skills_xx.csv, ISCOGroups_xx.csv,
    occupationSkillRelations_xx.csv), or folders holding them."""
    index = current_app.config["POLKU"].esco_index
    shown: dict[Path, int] = {}

    def progress(path: Path, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if shown.get(path) != percent and (percent % 10 == 0 or done == total):
            shown[path] = percent
            click.echo(f"  {path.name}: {percent} %", err=True)

    try:
        report = import_paths(
            index, list(paths), version=esco_version, progress=progress
        )
    except EscoImportError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Imported {report.concepts} concept rows ({report.labels} labels) and "
        f"{report.relations} relations from {len(report.files)} files: ESCO "
        f"{report.version}, languages {', '.join(report.languages)}."
    )
    for problem in report.problems[:50]:
        click.echo(f"  skipped {problem}", err=True)
    if len(report.problems) > 50:
        click.echo(f"  … and {len(report.problems) - 50} more problems", err=True)
    embedder = available() if embeddings else None
    if embedder is not None:

        def embedded(done: int, total: int) -> None:
            if done == total or done % 2048 < 64:
                click.echo(f"  embedding labels: {done}/{total}", err=True)

        count = embed_labels(index, embedder, embedded)
        click.echo(f"Embedded {count} new labels.")
    click.echo(f"Index: {index}. Restart the workers to load it.")


@esco_cli.command("status")
def status_command() -> None:
    """Show the ESCO version, languages and size of the local index."""
    index = current_app.config["POLKU"].esco_index
    status = index_status(index)
    if status is None:
        click.echo(
            f"No ESCO index at {index}. Jobs and skills stay in the client's words; "
            "import ESCO with `flask --app wsgi esco import FOLDER`."
        )
        return
    click.echo(f"ESCO {status.version} at {status.path}")
    click.echo(f"  languages:   {', '.join(status.languages)}")
    click.echo(f"  occupations: {status.occupations}")
    click.echo(f"  skills:      {status.skills}")
    click.echo(f"  relations:   {status.relations}")
    click.echo(f"  embedded:    {status.embedded} labels")
    click.echo(f"  imported:    {status.imported_at}")


@esco_cli.command("search")
@click.argument("text")
@click.option("--lang", "language", default="fi", show_default=True)
@click.option(
    "--kind", type=click.Choice([OCCUPATION, SKILL]), default=OCCUPATION,
    show_default=True,
)  # fmt: skip
@click.option("--limit", default=5, show_default=True)
def search_command(text: str, language: str, kind: str, limit: int) -> None:
    """Print the ESCO matches for TEXT, as the interview would offer them."""
    matcher = get_matcher(current_app._get_current_object())  # type: ignore[attr-defined]
    if matcher is None:
        raise click.ClickException("no ESCO index; run `flask --app wsgi esco import`")
    matches = matcher.search(text, language, kind, limit)
    if not matches:
        click.echo("No match.")
    for match in matches:
        code = match.code or ""
        click.echo(f"{match.score:.2f}  {code:<10} {match.label}  <{match.uri}>")
