"""The README's option tables, generated from the command line itself so that they cannot drift from `--help`.

Each `<!-- options: COMMAND -->` ... `<!-- /options -->` block of a Markdown file holds COMMAND's table: every
argument and option, its default and its `--help` text. `python -m yolo_prune.app.reference README.md` (`make docs`)
rewrites the blocks; `--check` fails when one differs, and tests/app/test_docs.py runs that check.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
from pathlib import Path

import typer
from typer.core import TyperArgument, TyperOption

BLOCK = re.compile(r"(<!-- options: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /options -->)", re.S)


METAVARS = {int: "N", float: "X", Path: "PATH"}  # by the option's annotation; anything else is TEXT


def _default(param: TyperArgument | TyperOption) -> str:
    if isinstance(param, TyperArgument):
        return "required" if param.required else "optional"
    if param.required:
        return "required"
    value = param.default
    if param.is_flag:
        if param.secondary_opts:  # --x/--no-x
            return f"`{param.opts[0] if value else param.secondary_opts[0]}`"
        return "off"
    if value is None:
        return "none"
    if isinstance(value, Enum):
        value = value.value
    return f"`{value}`"


def _name(param: TyperArgument | TyperOption) -> str:
    if isinstance(param, TyperArgument):
        return f"`{param.name.upper()}`"
    names = [*param.opts, *param.secondary_opts]
    metavar = "" if param.is_flag else " " + METAVARS.get(param.type_descriptor.annotation, "TEXT")
    return " / ".join(f"`{n}{metavar if i == 0 else ''}`" for i, n in enumerate(names))


def options_table(command) -> str:
    """A Markdown table of `command`'s arguments and options: name, default, meaning (its help text)."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for param in command.params:
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        meaning = " ".join((getattr(param, "help", None) or "").split()).replace("|", "\\|")
        rows.append(f"| {_name(param)} | {_default(param)} | {meaning} |")
    return "\n".join(rows) + "\n"


def commands(app: typer.Typer) -> dict:
    """The commands of `app`, by name, in the order they are declared."""
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def render(text: str, app: typer.Typer) -> str:
    """`text` with every options block replaced by the current table of its command."""
    known = commands(app)

    def table(match: re.Match) -> str:
        name = match.group("name")
        if name not in known:
            raise KeyError(f"options block for an unknown command: {name}")
        return match.group(1) + options_table(known[name]) + match.group(4)

    return BLOCK.sub(table, text)


def documented(text: str) -> list[str]:
    """The commands that `text` has an options block for."""
    return [m.group("name") for m in BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> None:
    from yolo_prune.app.cli import app

    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    for path in (Path(a) for a in args if a != "--check"):
        text = path.read_text()
        new = render(text, app)
        missing = sorted(set(commands(app)) - set(documented(text)))
        if check and (new != text or missing):
            sys.exit(f"{path}: option tables differ from --help" + (f"; no table for {missing}" if missing else ""))
        if not check and new != text:
            path.write_text(new)
            print(f"{path}: option tables updated")


if __name__ == "__main__":
    main()
