"""README.md assembly: Markdown fragments from ``docs/readme/`` with generated blocks filled in.

The README's prose lives in ``docs/readme/*.md``.  :func:`assemble_readme` concatenates the
fragments in the order of :data:`README_ORDER` (names without ``.md``; a listed fragment that
does not exist is skipped), then every other ``*.md`` of the directory in alphabetical order —
so adding a section means adding a file.  A fragment marks a generated block with an empty pair

    <!-- generated:NAME -->
    <!-- /generated:NAME -->

which the assembly fills with ``sections[NAME]`` (Markdown computed by ``aqpgen report``).

Public names
------------
README_ORDER                         -- the fragment order (the one place it is defined).
FRAGMENTS_DIR                        -- "docs/readme" (relative to the repository root).
HEADER                               -- the first line of the assembled README.
fragment_paths(dir)                  -- the fragment files, in assembly order.
generated_names(text)                -- the generated block names of a text, in order.
extract_generated(text)              -- {name: body} of the generated blocks of a text.
replace_generated(text, name, body)  -- fill one generated block (exactly one must exist).
assemble_readme(dir, sections)       -- the README text (ValueError naming any unfilled block).
write_readme(path, dir, sections)    -- assemble and write atomically; returns True if it changed.
cli_section(group)                   -- every command of a click group with its one-line help.
cli_summary(group)                   -- the commands by name, one paragraph (the README's block).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from aqpgen.report.markdown import md_table
from aqpgen.store.atomic import write_text_atomic

__all__ = [
    "FRAGMENTS_DIR",
    "HEADER",
    "README_ORDER",
    "assemble_readme",
    "cli_section",
    "cli_summary",
    "extract_generated",
    "fragment_paths",
    "generated_names",
    "replace_generated",
    "write_readme",
]

#: Fragment order (file names in docs/readme/ without ".md").  Unlisted fragments follow,
#: alphabetically.  which: the table choice (``aqpgen recommend``); trainers: the trainer
#: integrations (verl: its own recipe); build: building your own table (the spec keys); results: the headline numbers
#: and the experiment; alpha: the p^a targets.
README_ORDER = ("intro", "install", "usage", "which", "trainers", "verl", "cli", "build", "results",
                "alpha", "choices")
FRAGMENTS_DIR = os.path.join("docs", "readme")
HEADER = ("<!-- README.md is assembled by `make report` (or `aqpgen report --readme-only`) from "
          "docs/readme/*.md in the order of aqpgen/report/readme.py README_ORDER: edit those "
          "files, not this one. -->")

_MARK = "<!-- generated:{name} -->"
_END = "<!-- /generated:{name} -->"
_OPEN = re.compile(r"<!-- generated:([A-Za-z0-9_.-]+) -->")


def fragment_paths(fragments_dir) -> list[str]:
    """The fragment files of ``fragments_dir`` in assembly order (README_ORDER, then the rest)."""
    d = os.fspath(fragments_dir)
    if not os.path.isdir(d):
        raise FileNotFoundError(f"README fragments directory {d!r} not found")
    present = sorted(f[:-3] for f in os.listdir(d) if f.endswith(".md"))
    order = [n for n in README_ORDER if n in present] + [n for n in present if n not in README_ORDER]
    return [os.path.join(d, n + ".md") for n in order]


def generated_names(text: str) -> list[str]:
    """Names of the ``<!-- generated:NAME -->`` blocks of ``text``, in order."""
    return _OPEN.findall(text)


def _pattern(name: str) -> re.Pattern:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"section name must be [A-Za-z0-9_.-]+, received {name!r}")
    return re.compile(re.escape(_MARK.format(name=name)) + r"\n?(.*?)" + re.escape(_END.format(name=name)),
                      re.DOTALL)


def extract_generated(text: str) -> dict[str, str]:
    """{name: body} of every generated block of ``text`` (bodies without the markers)."""
    out = {}
    for name in generated_names(text):
        m = _pattern(name).search(text)
        if m:
            out[name] = m.group(1).strip("\n")
    return out


def replace_generated(text: str, name: str, body: str) -> str:
    """Replace the content between ``<!-- generated:name -->`` and ``<!-- /generated:name -->``.

    Raises ValueError when the markers are missing, duplicated or unbalanced.
    """
    pat = _pattern(name)
    n = len(pat.findall(text))
    if n != 1:
        raise ValueError(f"expected exactly one generated:{name} section, found {n}")
    block = _MARK.format(name=name) + "\n" + body.strip("\n") + "\n" + _END.format(name=name)
    return pat.sub(lambda _m: block, text)


def assemble_readme(fragments_dir, sections: Mapping[str, str]) -> str:
    """The README: HEADER, then the fragments in order, every generated block filled.

    Raises ValueError naming the fragment and block when a block has no section.
    """
    parts = [HEADER]
    for path in fragment_paths(fragments_dir):
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip("\n")
        for name in generated_names(text):
            if name not in sections:
                raise ValueError(f"{path}: generated block {name!r} has no generated section "
                                 f"(known: {', '.join(sorted(sections)) or 'none'})")
            text = replace_generated(text, name, sections[name])
        parts.append(text)
    return "\n\n".join(parts) + "\n"


def write_readme(path, fragments_dir, sections: Mapping[str, str]) -> bool:
    """Assemble the README and write it to ``path`` atomically; True when its text changed."""
    text = assemble_readme(fragments_dir, sections)
    old = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
    if text != old:
        write_text_atomic(path, text)
    return text != old


def _click_context(group):
    """A click context for ``group`` (``list_commands`` / ``get_command`` take one; a lazily
    loading group needs it to list every command)."""
    return type(group).context_class(group, info_name="aqpgen")


def _commands(group) -> list[tuple[str, str]]:
    """(command path, one-line help) of every command of the click ``group`` and its sub-groups."""
    rows = []
    ctx = _click_context(group)

    def walk(cmd, prefix):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if hasattr(sub, "list_commands"):
                walk(sub, [*prefix, name])
            else:
                rows.append((" ".join([*prefix, name]), sub.get_short_help_str(limit=120)))

    walk(group, [])
    return rows


def cli_section(group) -> str:
    """Markdown: every command of the click ``group`` (and its sub-groups) with its one-line help
    (docs/report.md).

    The group is passed in by the caller (the ``report`` command passes its own root group), so
    the report package does not import the CLI.
    """
    rows = [[f"`aqpgen {name}`", help_] for name, help_ in _commands(group)]
    return ("Every command (from the click definitions; `aqpgen COMMAND --help` teaches the "
            "conventions and options):\n\n" + md_table(["command", "what it does"], rows, "---|---|"))


def cli_summary(group) -> str:
    """Markdown, one paragraph: the commands of the click ``group`` by name (the README's block;
    :func:`cli_section`'s table with each command's help is in docs/report.md)."""
    names = ", ".join(f"`{name}`" for name, _ in _commands(group))
    return (f"`aqpgen COMMAND --help` teaches each command's conventions and options: {names} "
            "(each with its one-line help: [docs/report.md](docs/report.md#command-line)).")
