"""Every facefusion-ray and `python -m ray_jobs...` command in README.md, docs/ and examples/
is known to the real argument parser: a renamed flag or subcommand fails here, not for a
reader."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doc_commands import (
    DocCommand,
    doc_commands,
    parser_for,
    problems,
    ray_submit_options,
    ray_submit_problems,
)

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "examples" / "README.md",
    ROOT / "benchmarks" / "README.md",
]
COMMANDS = [command for document in DOCUMENTS for command in doc_commands(document, ROOT)]
SUBMITS = [submit for document in DOCUMENTS for submit in ray_submit_options(document, ROOT)]


def test_the_docs_show_commands_of_every_program() -> None:
    programs = {command.program for command in COMMANDS}
    assert {"facefusion-ray", "ray_jobs.render_catalog", "ray_jobs.nightly"} <= programs
    assert "ray_jobs.ab_compare" in programs
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.where)
def test_a_documented_command_is_known_to_its_parser(command: DocCommand) -> None:
    assert problems(command) == [], " ".join([command.program, *command.words])


def test_an_unknown_option_or_subcommand_is_caught(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text(
        "```\nfacefusion-ray swap --target a.mp4 --no-such-flag\n"
        "facefusion-ray models lisst\n"
        "facefusion-ray models list yunet   # list takes no ids\n"
        ".venv/bin/python -m ray_jobs.nightly spec.yaml --quick\n```\n"
        "and `facefusion-ray cache stats|prune --max-bytes N`\n",
        encoding="utf-8",
    )
    found = [problems(command) for command in doc_commands(document, tmp_path)]
    assert len(found) == 5
    assert "--no-such-flag" in found[0][0]
    assert "'lisst'" in found[1][0]
    assert "unrecognized arguments: yunet" in found[2][0]
    assert "--quick" in found[3][0]
    # Every alternative of `a|b` must take the words that follow: stats has no --max-bytes.
    assert "--max-bytes" in found[4][0]
    assert parser_for("ray_jobs.ab_compare").prog == "python -m ray_jobs.ab_compare"


def test_every_option_of_every_subcommand_says_what_it_does() -> None:
    def silent(parser: argparse.ArgumentParser) -> Iterator[str]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from silent(sub)
            elif action.option_strings and not action.help:
                yield f"{parser.prog} {action.option_strings[0]}"

    assert list(silent(parser_for("facefusion-ray"))) == []


@pytest.mark.parametrize("submit", SUBMITS, ids=lambda submit: submit[0])
def test_a_documented_ray_job_submit_takes_its_options(submit: tuple[str, list[str]]) -> None:
    assert ray_submit_problems(submit[1]) == []


def test_ray_job_submit_examples_are_found_and_checked() -> None:
    assert len(SUBMITS) >= 5
    assert any("--runtime-env-json" in words for _, words in SUBMITS)
    assert ray_submit_problems(["--working-dir", ".", "--runtime-env-json", "{'a': 1}"])
    assert ray_submit_problems(["--workdir", "."])
