"""ESCO: importing the portal's CSV files, the index, and matching clients' words.

The files are written by the tests in the official layout (tests/esco_files.py);
matching runs the real stemmer and the real bundled embedding model.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from rq import Queue

from esco.embeddings import available
from esco.importer import EscoImportError, import_paths
from esco.index import index_status
from esco.matcher import Matcher
from esco.text import expand
from tests import esco_files as files
from tests.esco_files import write_esco, write_rows
from tests.helpers import BurstWorker, search_esco


@pytest.fixture(scope="module")
def index(esco_index: Path) -> Path:
    return esco_index


@pytest.fixture(scope="module")
def matcher(index: Path) -> Matcher:
    return Matcher.load(index, available())


def rows(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as connection:
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}"))  # noqa: S608
            for table in ("concept", "label", "relation", "vector")
        }


def test_import_reads_the_portal_package_in_three_languages(index):
    status = index_status(index)

    assert status is not None
    assert (status.version, status.languages) == ("1.1.1", ("en", "fi", "sv"))
    assert (status.occupations, status.skills) == (9, 8)
    assert status.relations == len(files.RELATIONS)
    assert status.embedded > 0


def test_import_keeps_codes_groups_and_every_kind_of_label(index):
    with sqlite3.connect(index) as connection:
        concept = connection.execute(
            "SELECT code, isco_group FROM concept WHERE uri = ?", (files.WELDER,)
        ).fetchone()
        labels = set(
            connection.execute(
                "SELECT language, role, text FROM label WHERE uri = ?", (files.WELDER,)
            )
        )

    assert concept == ("7212.3", "7212")
    assert ("fi", "preferred", "hitsaaja") in labels
    assert ("en", "alternative", "fabrication welder") in labels
    assert ("en", "hidden", "weldor") in labels


def test_import_twice_leaves_the_same_index(tmp_path):
    folder = write_esco(tmp_path)
    path = tmp_path / "esco.sqlite"
    import_paths(path, [folder])
    first = rows(path)
    import_paths(path, [folder])

    assert rows(path) == first


def test_languages_merge_by_uri_and_a_new_file_replaces_old_labels(tmp_path):
    path = tmp_path / "esco.sqlite"
    import_paths(path, [write_esco(tmp_path / "en", ("en",))])
    folder = write_esco(tmp_path / "fi", ("fi",))
    import_paths(path, [folder])
    # A newer file where the cook has lost its alternative label.
    occupations = folder / "occupations_fi.csv"
    text = occupations.read_text(encoding="utf-8")
    occupations.write_text(text.replace("ravintolakokki", ""), encoding="utf-8")
    import_paths(path, [folder])
    matcher = Matcher.load(path)

    assert index_status(path).languages == ("en", "fi")
    assert matcher.label(files.COOK, "fi") == "kokki"
    assert matcher.label(files.COOK, "en") == "cook"
    with sqlite3.connect(path) as connection:
        alternatives = connection.execute(
            "SELECT text FROM label WHERE uri = ? AND language = 'fi' AND role = ?",
            (files.COOK, "alternative"),
        ).fetchall()
    assert alternatives == []


def test_malformed_rows_are_reported_with_file_and_line_and_the_rest_imported(
    tmp_path,
):
    folder = write_esco(tmp_path, ("en",))
    occupations = folder / "occupations_en.csv"
    good = occupations.read_text(encoding="utf-8")
    # The first bad record's label cell spans two lines; the next starts after.
    broken = good + (
        'Occupation,http://example.org/not-esco,1234,bad uri,"a\nb",,released\n'
        "Occupation,http://data.europa.eu/esco/occupation/x-1,,,,,released\n"
    )
    occupations.write_text(broken, encoding="utf-8")
    with (folder / "skills_en.csv").open("ab") as handle:
        handle.write(b"KnowledgeSkillCompetence,http://data.europa.eu/esco/skill/")
        handle.write(b"y-2,knowledge,,caf\xe9 broken,,,released\n")
    report = import_paths(tmp_path / "esco.sqlite", [folder])
    problems = {(p.path.name, p.line): p.message for p in report.problems}
    lines = good.count("\n")

    assert "not an ESCO occupation URI" in problems[("occupations_en.csv", lines + 1)]
    assert problems[("occupations_en.csv", lines + 3)] == "preferredLabel is empty"
    assert "UTF-8" in problems[("skills_en.csv", len(files.SKILLS) + 2)]
    assert index_status(tmp_path / "esco.sqlite").occupations == 9


def test_a_file_without_esco_columns_is_reported_and_the_others_imported(tmp_path):
    folder = write_esco(tmp_path, ("en",))
    write_rows(folder / "skills_en.csv", ["uri", "label"], [["a", "b"]])
    report = import_paths(tmp_path / "esco.sqlite", [folder])

    assert [str(p) for p in report.problems] == [
        f"{folder / 'skills_en.csv'}:1: missing column(s) conceptUri, "
        "preferredLabel; not an ESCO file?",
        f"{folder / 'occupationSkillRelations_en.csv'}: 11 relation(s) name an "
        "occupation or skill that is not imported; import occupations_xx.csv and "
        "skills_xx.csv with it",
    ]
    assert index_status(tmp_path / "esco.sqlite").occupations == 9


def test_a_folder_without_esco_files_is_a_clear_error(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n")

    with pytest.raises(EscoImportError, match="no ESCO CSV files found"):
        import_paths(tmp_path / "esco.sqlite", [tmp_path])


@pytest.mark.parametrize(
    ("text", "language", "kind", "expected"),
    [
        ("olin hitsaajana", "fi", "occupation", files.WELDER),
        ("trukkikuskina", "fi", "occupation", files.FORKLIFT_OPERATOR),
        ("sahkoasentaja", "fi", "occupation", files.ELECTRICIAN),
        ("haluaisin lähihoitajaksi", "fi", "occupation", files.HEALTHCARE_ASSISTANT),
        ("I worked in a restaurant kitchen", "en", "occupation", files.COOK),
        ("welderr", "en", "occupation", files.WELDER),
        ("jag jobbade som svetsare", "sv", "occupation", files.WELDER),
        ("osaan ajaa trukkia", "fi", "skill", files.FORKLIFT),
        ("customer service", "en", "skill", files.CUSTOMER_SERVICE),
    ],
)
def test_search_finds_what_clients_write(matcher, text, language, kind, expected):
    found = [match.uri for match in matcher.search(text, language, kind)]

    assert expected in found[:2]


def test_one_message_naming_two_jobs_offers_both(matcher):
    found = matcher.search("olin hitsaajana ja trukkikuskina", "fi", "occupation")

    assert [m.uri for m in found[:2]] == [files.WELDER, files.FORKLIFT_OPERATOR]
    assert found[0].label == "hitsaaja"
    assert (found[0].code, found[0].isco_group) == ("7212.3", "7212")
    assert 0 < found[1].score <= found[0].score <= 1


def test_labels_come_in_the_clients_language_or_english(matcher):
    assert matcher.label(files.WELDER, "sv") == "svetsare, manuell"
    assert matcher.label(files.WELDER, "uk") == "welder"
    assert matcher.isco_label("7212", "fi") == "Hitsaajat ja metallinleikkaajat"


def test_nothing_is_offered_for_words_that_match_nothing(matcher):
    assert matcher.search("zzzz qqqq", "fi", "occupation") == []


def test_essential_skills_of_an_occupation_come_first_and_skills_before_knowledge(
    matcher,
):
    skills = matcher.essential_skills([files.COOK, files.KITCHEN_PORTER])

    assert skills[0] == files.DISHES
    assert set(skills) == {files.DISHES, files.COOKING, files.HYGIENE, files.SURFACES}
    assert files.FORKLIFT not in matcher.essential_skills([files.WELDER])


def test_without_embeddings_matching_is_lexical(index):
    matcher = Matcher.load(index)

    assert not matcher.embedded
    assert matcher.search("hitsaajana", "fi", "occupation")[0].uri == files.WELDER


def test_a_work_horse_can_search_after_its_worker_did(index, matcher, redis_client):
    """The embedding engine's threads would not survive the fork."""
    matcher.search("hitsaaja", "fi", "occupation")
    queue = Queue("polku-test-esco", connection=redis_client)
    queue.empty()
    job = queue.enqueue(search_esco, str(index), "trukkikuski", job_timeout=20)
    BurstWorker([queue], connection=queue.connection).work(burst=True)

    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == files.FORKLIFT_OPERATOR


@pytest.mark.parametrize(
    ("text", "language", "added"),
    [
        ("olin trukkikuskina", "fi", "kuljettaja"),
        ("Rekkakuski", "fi", "kuorma-auto"),
        ("I can use Excel", "en", "spreadsheets"),
    ],
)
def test_everyday_words_get_the_words_esco_uses(text, language, added):
    assert added in expand(text, language)
    assert expand("hitsaaja", "fi") == "hitsaaja"


def test_the_operator_imports_checks_and_searches_from_the_command_line(app, tmp_path):
    runner = app.test_cli_runner()
    before = runner.invoke(args=["esco", "status"])
    folder = write_esco(tmp_path)
    (folder / "skills_fi.csv").write_text(
        "conceptType,conceptUri,preferredLabel\nx,http://example.org/1,y\n",
        encoding="utf-8",
    )

    imported = runner.invoke(args=["esco", "import", str(folder)])
    status = runner.invoke(args=["esco", "status"])
    search = runner.invoke(args=["esco", "search", "olin hitsaajana", "--lang", "fi"])

    assert "No ESCO index" in before.output
    assert imported.exit_code == 0, imported.output
    assert "ESCO 1.1.1, languages en, fi, sv" in imported.output
    assert "skills_fi.csv:2: conceptUri 'http://example.org/1'" in imported.output
    assert "skills_fi.csv: 100 %" in imported.output
    assert "ESCO 1.1.1 at" in status.output and "occupations: 9" in status.output
    assert f"7212.3     hitsaaja  <{files.WELDER}>" in search.output.splitlines()[0]


def test_import_of_nothing_esco_is_a_clear_command_error(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["esco", "import", str(tmp_path)])

    assert result.exit_code == 1
    assert "no ESCO CSV files found" in result.output
