"""The README is true to the command line: its option tables are `--help`'s, and it is a user guide, not a log."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from yolo_prune import __version__
from yolo_prune.app.cli import app
from yolo_prune.app.reference import commands, documented, render

README = Path(__file__).resolve().parents[2] / "README.md"
runner = CliRunner()


def test_every_command_has_an_option_table_equal_to_its_help():
    text = README.read_text()
    assert sorted(documented(text)) == sorted(commands(app)), "a command without its table: run `make docs`"
    assert render(text, app) == text, "README's option tables differ from --help: run `make docs`"


def test_the_tables_list_every_option_with_its_default():
    text = render(README.read_text(), app)
    for name, command in commands(app).items():
        block = text.split(f"<!-- options: {name} -->", 1)[1].split("<!-- /options -->", 1)[0]
        for param in command.params:
            flag = param.opts[0] if param.opts[0].startswith("--") else param.name.upper()
            row = next((line for line in block.splitlines() if f"`{flag}" in line), None)
            assert row is not None, f"{name}: {flag} missing"
            assert row.count("|") >= 4 and row.split("|")[2].strip(), f"{name}: {flag} has no default"


def test_a_changed_help_text_is_caught():
    text = README.read_text()
    stale = text.replace("| Dataset YAML.", "| Dataset YAML, as it once was documented.", 1)
    assert stale != text and render(stale, app) != stale


def test_readme_is_a_guide_without_dates_machines_or_internal_paths():
    paragraphs = README.read_text().split("\n\n")
    body = [line for p in paragraphs if not p.startswith("Source:") for line in p.splitlines()]  # the results' source
    for pattern in (r"\b20\d\d-\d\d-\d\d\b", r"\.\./shared", r"\bscratch/", r"\bEPYC\b", r"\bXeon\b", r"this machine"):
        hits = [line for line in body if re.search(pattern, line)]
        assert not hits, f"{pattern}: {hits[:2]}"


def test_your_own_data_is_on_the_first_screen():
    lines = README.read_text().splitlines()
    contents = lines.index("## Contents")
    own = next(i for i, line in enumerate(lines) if "(#your-own-data-start-to-finish)" in line)
    assert contents < own < 40


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"yolo-prune {__version__}"
