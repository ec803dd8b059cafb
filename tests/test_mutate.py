"""The mutation runner (benchmarks/mutate.py) makes the mutants it says it makes, one at a
time, and leaves docstrings, annotations and marked lines alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmarks import mutate

SOURCE = '''"""A docstring with 1 < 2 in it."""
LIMIT: int = 3


def check(x: int, seen: set[int]) -> bool:
    """Docstring."""
    if x <= LIMIT and not x in seen:
        return x - 1 == 0
    return False  # pragma: no mutate
'''


def changes(source: str) -> list[tuple[int, str, str]]:
    """(line, change, the changed line as it is unparsed) of every mutant."""
    found = []
    for site in mutate.mutants(source):
        mutated = ast.unparse(ast.parse(mutate.mutated_source(source, site))).splitlines()
        original = ast.unparse(ast.parse(source)).splitlines()
        [changed] = [m for o, m in zip(original, mutated, strict=True) if o != m]
        found.append((site.line, site.change, changed.strip()))
    return sorted(found)


def test_every_operator_class_is_mutated_once_per_place() -> None:
    assert changes(SOURCE) == [
        (2, "3 -> 4", "LIMIT: int = 4"),
        (7, "<= -> <", "if x < LIMIT and (not x in seen):"),
        (7, "<= -> >", "if x > LIMIT and (not x in seen):"),
        (7, "and -> or", "if x <= LIMIT or not x in seen:"),
        (7, "drop not", "if x <= LIMIT and x in seen:"),
        (7, "in -> not in", "if x <= LIMIT and (not x not in seen):"),
        (7, "negate condition", "if not (x <= LIMIT and (not x in seen)):"),
        (8, "- -> +", "return x + 1 == 0"),
        (8, "0 -> 1", "return x - 1 == 1"),
        (8, "1 -> 2", "return x - 2 == 0"),
        (8, "== -> !=", "return x - 1 != 0"),
    ]


def test_the_configured_modules_and_their_tests_exist() -> None:
    root = Path(mutate.__file__).resolve().parent.parent
    assert set(mutate.MODULES) == {"ledger", "completion", "gate", "deployer", "config", "errors"}
    for path, tests in mutate.MODULES.values():
        assert (root / path).is_file(), path
        assert tests and all((root / t).is_file() for t in tests), tests
        assert len(mutate.mutants((root / path).read_text())) > 20, path


@pytest.mark.parametrize("outcomes", [["killed", "timeout", "survived", "killed"]])
def test_the_score_counts_timeouts_as_killed_and_lists_survivors(outcomes: list[str]) -> None:
    results = [
        mutate.Result(i, 10 + i, "< -> <=", f"code {i}", outcome, 1.0)
        for i, outcome in enumerate(outcomes)
    ]
    assert mutate.summary("ledger", results).splitlines() == [
        "ledger: 3 of 4 mutants killed (75 %), 1 of them by a timeout",
        "  survived #2 line 12: < -> <=  (code 2)",
    ]


@pytest.mark.parametrize(
    ("files", "outcome"),
    [
        ({"test_a.py": "def test_a():\n    assert True\n"}, "survived"),
        ({"test_a.py": "def test_a():\n    assert False\n"}, "killed"),
        ({"test_a.py": "import missing_module_of_a_mutant\n"}, "killed"),
        # a mutant that breaks an import made by conftest.py: pytest exits with 4
        ({"conftest.py": "raise TypeError('unhashable')\n", "test_a.py": ""}, "killed"),
    ],
)
def test_a_failing_test_or_a_broken_import_kills_a_mutant(
    tmp_path: Path, files: dict[str, str], outcome: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert mutate._run_tests(tmp_path, ("test_a.py",), timeout=120)[0] == outcome
