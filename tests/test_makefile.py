"""The Makefile says what it does: `make help` describes every target, `.PHONY` lists only real
ones, and editing a jest spec does not rebuild the production labextension."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABEXT = "parallelworks_lab/labextension/static/style.js"


def make(*args: str) -> str:
    # -q: question mode, runs no recipe (only the $(shell ...) calls of the Makefile itself).
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout


def database() -> str:
    return make("-qp", "help")


def phony_targets() -> list[str]:
    [line] = [ln for ln in (REPO / "Makefile").read_text().splitlines() if ln.startswith(".PHONY")]
    return line.split(":", 1)[1].split()


def test_phony_lists_only_targets_that_exist():
    rules = set(re.findall(r"^([A-Za-z0-9_.-]+):", (REPO / "Makefile").read_text(), re.M))
    missing = [t for t in phony_targets() if t not in rules]
    assert not missing, f".PHONY names targets without a rule: {missing}"


def test_help_describes_every_target():
    text = make("help")
    undocumented = [t for t in phony_targets() if not re.search(rf"make {re.escape(t)}\b", text)]
    assert not undocumented, (undocumented, text)
    [test_line] = [ln for ln in text.splitlines() if re.match(r"\s*make test\b", ln)]
    test_help = text[text.index(test_line) :]
    for part in ("lint", "jest", "pytest", "Slurm", "Grid Engine", "Galata"):
        assert part in test_help, (part, text)


def test_editing_a_jest_spec_does_not_rebuild_the_labextension():
    [rule] = [ln for ln in database().splitlines() if ln.startswith(f"{LABEXT}:")]
    prerequisites = rule.split(":", 1)[1].split()
    assert any(p.startswith("src/") for p in prerequisites), rule  # the sources still count
    assert not [p for p in prerequisites if "__tests__" in p], rule
