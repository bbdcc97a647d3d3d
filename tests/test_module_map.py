"""CONTRIBUTING's map of the tree names every module, and every module keeps to the house size."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testbed.procs import ROOT
from tests.test_layout import PACKAGES

# Where the code lives, as the map's top-level lines name it.
ROOTS = {
    **{f"{folder.relative_to(ROOT)}/": folder for folder in PACKAGES.values()},
    "bench/": ROOT / "bench",
    "testbed/": ROOT / "testbed",
}
MAX_LINES = 300
UNLISTED = {"__init__.py", "__main__.py"}


def map_sections() -> dict[str, str]:
    """The text of CONTRIBUTING's "Where things live" block, split by the top-level folder it describes."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = text.split("## Where things live", 1)[1].split("```", 2)[1]
    sections: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        head = line.split(" ", 1)[0]
        if head in ROOTS:
            current = head
        if current:
            sections[current] = sections.get(current, "") + line + "\n"
    return sections


def named(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text) is not None


def is_benchmark(path: Path) -> bool:
    """A benchmark or its summing-up, which the map describes by pattern (NAME.py, summaries/NAME.py)."""
    return path.is_relative_to(ROOT / "bench") and (ROOT / "bench" / f"{path.stem}.md").exists()


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "results" not in p.relative_to(folder).parts)


@pytest.mark.parametrize("top", sorted(ROOTS))
def test_contributing_names_every_module(top: str) -> None:
    sections = map_sections()
    assert top in sections, f"CONTRIBUTING.md's map has no line for {top}"
    section = sections[top]
    missing = []
    for path in modules(ROOTS[top]):
        relative = path.relative_to(ROOTS[top])
        if path.name in UNLISTED or is_benchmark(path):
            continue
        folders = [f"{part}/" for part in relative.parts[:-1]]
        in_named_package = top == "bench/" and bool(folders) and named(section, folders[0])
        if in_named_package:
            continue
        if not named(section, path.name) or not all(named(section, f) for f in folders):
            missing.append(str(relative))
    assert not missing, f"CONTRIBUTING.md's map of {top} does not name: {', '.join(missing)}"


@pytest.mark.parametrize("top", sorted(ROOTS))
def test_every_module_keeps_to_three_hundred_lines(top: str) -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in modules(ROOTS[top])
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_named_tells_a_module_from_a_longer_name() -> None:
    assert named("the store (store.py)", "store.py")
    assert named("jobs/store.py", "store.py")
    assert not named("tokenstore.py", "store.py")
    assert not named("redis_pubsub.py", "pubsub.py")
