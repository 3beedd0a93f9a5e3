"""The documents a newcomer reads: links that stay inside the repository, paths that exist,
commands that parse, the license pyproject.toml names."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from gateway.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_license_file_is_the_one_pyproject_names() -> None:
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def test_links_of_the_docs_point_at_files_of_the_repository() -> None:
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#]+)\)", doc.read_text()):
            if "://" in target:
                continue
            path = (doc.parent / target).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name}: {target}"
        assert "../shared" not in doc.read_text(), doc.name


def test_paths_the_architecture_names_exist() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    paths = set(re.findall(r"`((?:core|adapters|gateway|tests|examples)/[\w/.]+)`", text))
    assert paths
    for table_row in re.findall(r"^\| `(\w+\.py)`", text, flags=re.M):  # gateway/ modules listed by name
        paths.add(f"gateway/{table_row}")
    missing = [p for p in sorted(paths) if not (ROOT / p.rstrip("/")).exists()]
    assert missing == []


def test_the_example_configs_header_shows_commands_that_parse() -> None:
    header = [line for line in (ROOT / "examples" / "rosettamq.toml").read_text().splitlines()
              if re.match(r"#\s+(Run with|or):", line)]
    assert header
    for line in header:
        command = line.split(":", 1)[1].strip()
        if command.startswith("bash scripts/start.sh"):  # start.sh passes its options to `rosettamq run`
            command = "rosettamq run" + command.removeprefix("bash scripts/start.sh")
        words = shlex.split(command)[1:]
        args = build_parser().parse_args(words)
        assert args.command == "run" and args.config == "examples/rosettamq.toml"
