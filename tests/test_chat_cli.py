"""The terminal commands counsellors use: `chat` and `flows check`."""

from __future__ import annotations

import shutil

from bot import create_app
from flows import FLOWS_DIR


def test_chat_plays_the_interview_in_the_terminal(app):
    runner = app.test_cli_runner()

    result = runner.invoke(args=["chat", "--language", "en"], input="Juva\n24\nback\n")

    assert result.exit_code == 0
    assert "Which municipality do you live in?" in result.output
    assert result.output.count("How old are you?") == 2


def test_chat_ends_with_what_the_counsellor_gets(app):
    runner = app.test_cli_runner()

    result = runner.invoke(args=["chat", "--language", "fi"], input="Juva\nihminen\n")

    assert "--- for the counsellor ---" in result.output
    assert '"municipality": "juva"' in result.output


def test_chat_plays_one_flow_alone(app):
    result = app.test_cli_runner().invoke(
        args=["chat", "--flow", "interview", "--language", "en"], input="2\n\n"
    )

    assert (
        result.output.startswith("polke> ".replace("e", "u"))
        or "polku>" in result.output
    )
    assert "How old are you?" in result.output


def test_chat_refuses_an_unknown_language(app):
    result = app.test_cli_runner().invoke(args=["chat", "--language", "xx"])

    assert result.exit_code != 0
    assert "'xx' is not one of fi, sv, en" in result.output


def test_flows_check_reports_what_it_read(app):
    result = app.test_cli_runner().invoke(args=["flows", "check"])

    assert result.exit_code == 0
    assert "OK: 1 flow(s), 30 steps" in result.output
    assert "marked for the city to check" in result.output


def test_flows_check_fails_on_a_broken_copy(app, tmp_path):
    copy = tmp_path / "flows"
    shutil.copytree(FLOWS_DIR, copy, ignore=shutil.ignore_patterns("*.py"))
    settings = app.config["POLKU"].with_overrides(flows_dir=copy)
    checked = create_app({"settings": settings})
    (copy / "rules.yaml").write_text("rules: not a list\n")

    result = checked.test_cli_runner().invoke(args=["flows", "check"])

    assert result.exit_code == 1
    assert "RULES" in result.output and "expected 'rules', a list" in result.output


def test_chat_shows_the_counsellor_free_text_in_finnish(argos_app):
    cook = "Я працювала кухарем у Києві"
    lines = ["1", "41", "6", "5", cook, "HUMAN"]
    runner = argos_app.test_cli_runner()

    result = runner.invoke(args=["chat", "--language", "uk"], input="\n".join(lines))

    assert result.exit_code == 0, result.output
    assert "Vastaukset suomeksi" in result.output
    assert "  Я працювала kokki у Києві\n" in result.output
    assert "(konekäännös kielestä ukraina" in result.output
    assert f"asiakkaan omin sanoin (ukraina): {cook}" in result.output
    assert "ei vastausta, kysy tapaamisessa" not in result.output
