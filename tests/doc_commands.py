"""The commands the docs show: found in Markdown, split into words, checked against the parser
of the program they run (facefusion-ray's own, or a `python -m ray_jobs...` module's)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facefusion_ray.cli.main import build_parser

_FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_PROGRAM = re.compile(
    r"(?:^|[\s;&(])((?:\S*/)?facefusion-ray|(?:\S*/)?python -m \w+(?:\.\w+)*)(?=\s|$)"
)
_CHECKED_MODULES = ("ray_jobs.", "benchmarks.run", "benchmarks.gpu_check", "benchmarks.scale")


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    program: str  # facefusion-ray or a module name
    words: list[str]


def doc_commands(markdown: Path, root: Path) -> Iterator[DocCommand]:
    """Every facefusion-ray or `python -m` (ray_jobs, benchmarks.run) command of a Markdown file:
    in fenced code blocks, line continuations joined, and in inline code spans."""
    text = markdown.read_text(encoding="utf-8")
    name = markdown.relative_to(root).as_posix()
    for block in _FENCE.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        for offset, line in _joined_lines(block.group(1)):
            yield from _commands_in(line, f"{name}:{first_line + offset}")
    for span in _INLINE.finditer(_FENCE.sub("", text)):
        yield from _commands_in(span.group(1), name)


def _joined_lines(block: str) -> Iterator[tuple[int, str]]:
    pending, start = "", 0
    for index, line in enumerate(block.splitlines()):
        if not pending:
            start = index
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def _commands_in(line: str, where: str) -> Iterator[DocCommand]:
    line = re.sub(r"(^|\s)#.*$", "", line)  # a shell comment
    for found in _PROGRAM.finditer(line):
        program = found.group(1).rsplit("/", 1)[-1]
        if program.startswith("python") or " -m " in found.group(1):
            program = found.group(1).split(" -m ")[1]
            if not program.startswith(_CHECKED_MODULES):
                continue
        rest = line[found.end() :]
        rest = re.split(r"\s(?:>>?|\|\||&&|;|2>&1)\s?|`", rest)[0]
        rest = re.sub(r"\[[a-z][^\]-]*\]", "", rest)  # prose such as [swap options]
        # `models import ... | models add ...`: alternatives of one program.
        for piece in re.split(r"\s\|\s", rest):
            try:
                words = shlex.split(piece)
            except ValueError:
                words = piece.split()
            yield DocCommand(where, program, words)


def parser_for(program: str) -> argparse.ArgumentParser:
    if program == "facefusion-ray":
        return build_parser()
    module = importlib.import_module(program)
    return module.build_parser()


def problems(command: DocCommand) -> list[str]:
    """What the command's parser does not know: subcommands and options. Synopsis notation
    (`[...]`, `a|b`, `...`, CAPITAL placeholders) is read as the docs mean it."""
    parser = parser_for(command.program)
    words = [word.strip("[]") for word in command.words]
    words = [word for word in words if word and word != "..."]
    position = 0
    alternatives = [parser]
    while (subparsers := _subparsers(parser)) is not None and position < len(words):
        word = words[position]
        if word.startswith("-"):
            break
        choices = [choice for choice in word.split("|") if choice]
        unknown = [choice for choice in choices if choice not in subparsers.choices]
        if unknown:
            return [f"unknown subcommand {unknown[0]!r} of {parser.prog!r}"]
        alternatives = [subparsers.choices[choice] for choice in choices]
        parser = alternatives[0]
        position += 1
    found = _unknown_options(alternatives, words[position:])
    return found or [
        error for choice in alternatives if (error := _extra_arguments(choice, words[position:]))
    ]


def _extra_arguments(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    """The parser's complaint about words it has no place for (positionals too many, a value
    out of its choices); placeholders for missing or typed values are not complaints."""
    errors: list[str] = []

    def error(message: str) -> None:
        errors.append(message)
        raise SystemExit(2)

    parser.error = error  # type: ignore[method-assign]
    for sub in (_subparsers(parser) or argparse.Namespace(choices={})).choices.values():
        sub.error = error  # type: ignore[method-assign]
    with contextlib.suppress(SystemExit):
        parser.parse_args(words)
    for message in errors:
        if "unrecognized arguments" in message or "invalid choice" in message:
            return f"{parser.prog}: {message}"
    return None


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _unknown_options(parsers: list[argparse.ArgumentParser], words: list[str]) -> list[str]:
    """Options that none of the parsers (a subcommand's alternatives, `a|b`) knows."""
    known = {option for parser in parsers for option in parser._option_string_actions}
    unknown = []
    for word in words:
        for option in word.split("|"):
            option = option.split("=", 1)[0]
            if re.fullmatch(r"--?[a-z][\w-]*", option) and option not in known:
                unknown.append(f"{parsers[0].prog}: unknown option {option!r}")
    return unknown


_RAY_SUBMIT = re.compile(r"(?:^|[\s;&])(?:\S*/)?ray job submit\s(.*?)(?:\s--\s|$)")


def ray_submit_options(markdown: Path, root: Path) -> Iterator[tuple[str, list[str]]]:
    """The words before `--` of every `ray job submit` in a fenced block, joined lines."""
    text = markdown.read_text(encoding="utf-8")
    name = markdown.relative_to(root).as_posix()
    for block in _FENCE.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        for offset, line in _joined_lines(block.group(1)):
            for found in _RAY_SUBMIT.finditer(" ".join(line.split())):
                yield f"{name}:{first_line + offset}", shlex.split(found.group(1))


def ray_submit_problems(words: list[str]) -> list[str]:
    """Options Ray's own `ray job submit` does not take, and --runtime-env-json that is not
    JSON."""
    import json

    from ray.dashboard.modules.job.cli import submit

    known = {option for parameter in submit.params for option in parameter.opts}
    options = [word for word in words if word.startswith("-")]
    found = [
        f"ray job submit: unknown option {option!r}"
        for option in options
        if option.split("=", 1)[0] not in known
    ]
    for option, value in itertools.pairwise(words):
        if option == "--runtime-env-json":
            try:
                json.loads(value)
            except ValueError as error:
                found.append(f"--runtime-env-json is not JSON: {error}")
    return found
