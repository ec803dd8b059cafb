"""`make mutate`: how many small faults in the critical modules the tests catch.

A mutant is the module with one change a slip of the keyboard could make: a comparison moved
across its boundary (`<` to `<=`) or negated (`<` to `>=`, `==` to `!=`, `in` to `not in`),
`and` for `or`, `+` for `-` and `*` for `/`, a `not` dropped, an `if`/`while` condition negated,
a number changed by one, `True` for `False`. Strings, docstrings and annotations are left alone.

Each mutant is written, one at a time, into a temporary copy of the checkout, and the test
files listed for that module run against it (`pytest -x`, stopping at the first failure). A
failing run kills the mutant; a run slower than three times the unmutated one (plus 30 s)
counts as killed by a timeout; a passing run means it survived. The score is killed / all.
Survivors are listed with their line: each is a missing test or an equivalent mutant (one no
behaviour can tell apart), and the README says which.

    python -m benchmarks.mutate ledger            # one module (see MODULES)
    python -m benchmarks.mutate ledger --list     # the mutants only, no tests run
    python -m benchmarks.mutate ledger --only 12  # one mutant, to look at it
    python -m benchmarks.mutate ledger --only 3 12 40  # a few, after one unmutated run

It is CPU-heavy (a pytest run per mutant): run it niced, one module at a time. The report is
also written to .build/mutate/<module>.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PRAGMA = "# pragma: no mutate"
COPY_IGNORED = (
    ".git",
    ".venv",
    "node_modules",
    ".cache",
    "cdk.out",
    ".build",
    "__pycache__",
    ".*_cache",
)

# module name -> (source file, the test files that exercise it)
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ledger": (
        "lambdas/start_training/dataset_ledger.py",
        (
            "tests/lambdas/test_ledger_writes.py",
            "tests/lambdas/test_trigger_contention.py",
            "tests/lambdas/test_start_training.py",
            "tests/faults/test_trigger_faults.py",
        ),
    ),
    "completion": (
        "lambdas/start_training/dataset_completion.py",
        (
            "tests/lambdas/test_start_training.py",
            "tests/lambdas/test_trigger_identity.py",
            "tests/lambdas/test_trigger_names.py",
        ),
    ),
    "gate": (
        "pipeline_code/steps/evaluate/gate_rule.py",
        ("tests/steps/test_gate.py",),
    ),
    "deployer": (
        "lambdas/deploy_model/model_deployer/deploy.py",
        (
            "tests/lambdas/test_deploy_model.py",
            "tests/lambdas/test_deploy_rollbacks.py",
            "tests/faults/test_deploy_faults.py",
        ),
    ),
    "config": (
        "mlops_config/rules.py",
        # test_config_serving: the integer-choice rule (memory sizes: 2048.0 and true refused)
        ("tests/test_config.py", "tests/test_config_rules.py", "tests/test_config_serving.py"),
    ),
    # the one-line error users see, and the nearest known key of an unknown one
    "errors": (
        "mlops_config/errors.py",
        # test_config_tuning: unknown keys inside an optional block and a dict of sections
        (
            "tests/test_config.py",
            "tests/test_config_rules.py",
            "tests/test_config_serving.py",
            "tests/test_config_tuning.py",
            "tests/test_config_errors.py",
        ),
    ),
}

_BOUNDARY: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
}
_NEGATION: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.GtE,
    ast.LtE: ast.Gt,
    ast.Gt: ast.LtE,
    ast.GtE: ast.Lt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
_SYMBOL = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
}  # fmt: skip


@dataclass(frozen=True)
class Site:
    """One mutant: where (1-based line), what it changes, and how (applied to a fresh tree)."""

    line: int
    change: str
    apply: Callable[[ast.AST], None]


def _protected(tree: ast.Module, lines: list[str]) -> set[int]:
    """ids of nodes never mutated: annotations, docstrings, `if TYPE_CHECKING`/`__main__`
    guards and lines marked with the pragma."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        for field in ("annotation", "returns"):
            sub = getattr(node, field, None)
            if isinstance(sub, ast.AST):
                skip.update(id(n) for n in ast.walk(sub))
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and _is_text(first.value):
            skip.update(id(n) for n in ast.walk(first))
        guard = isinstance(node, ast.If) and any(
            name in ast.unparse(node.test) for name in ("TYPE_CHECKING", "__main__")
        )
        if guard:
            skip.update(id(n) for n in ast.walk(node))
        line = getattr(node, "lineno", 0)
        if line and PRAGMA in lines[line - 1]:
            skip.add(id(node))
    return skip


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class _Dropped(ast.UAdd):
    """Marks a dropped `not`: `_DropMarked` replaces the operation by its operand."""


class _DropMarked(ast.NodeTransformer):
    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        return node.operand if isinstance(node.op, _Dropped) else node


def _set_compare(node: ast.Compare, index: int, op: type[ast.cmpop]) -> None:
    node.ops[index] = op()


def _set_op(node: ast.BinOp | ast.AugAssign | ast.BoolOp | ast.UnaryOp, op: type[ast.AST]) -> None:
    node.op = op()  # type: ignore[assignment]


def _negate(node: ast.If | ast.While | ast.IfExp) -> None:
    node.test = ast.UnaryOp(ast.Not(), node.test)


def _set_value(node: ast.Constant, value: bool | int | float) -> None:
    node.value = value


Mutation = tuple[ast.AST, str, Callable[[], None]]


def _node_mutations(node: ast.AST) -> Iterator[Mutation]:
    """The mutants of one node: (node, what changes, change it in place)."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for table in (_BOUNDARY, _NEGATION):
                new = table.get(type(op))
                if new is not None:
                    change = f"{_SYMBOL[type(op)]} -> {_SYMBOL[new]}"
                    yield node, change, partial(_set_compare, node, i, new)
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _ARITHMETIC:
        arithmetic = _ARITHMETIC[type(node.op)]
        change = f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[arithmetic]}"
        yield node, change, partial(_set_op, node, arithmetic)
    elif isinstance(node, ast.BoolOp):
        swap: type[ast.boolop] = ast.Or if isinstance(node.op, ast.And) else ast.And
        change = f"{type(node.op).__name__.lower()} -> {swap.__name__.lower()}"
        yield node, change, partial(_set_op, node, swap)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield node, "drop not", partial(_set_op, node, _Dropped)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield node, "drop unary -", partial(_set_op, node, ast.UAdd)
    elif isinstance(node, ast.If | ast.While | ast.IfExp):
        yield node, "negate condition", partial(_negate, node)
    elif isinstance(node, ast.Constant) and type(node.value) in (bool, int, float):
        old = node.value
        assert isinstance(old, bool | int | float)
        new_value = (not old) if isinstance(old, bool) else old + 1
        yield node, f"{old!r} -> {new_value!r}", partial(_set_value, node, new_value)


def _sites(tree: ast.Module, lines: list[str]) -> list[Mutation]:
    """Every mutant of `tree`, in a fixed order (ast.walk's)."""
    skip = _protected(tree, lines)
    return [m for node in ast.walk(tree) if id(node) not in skip for m in _node_mutations(node)]


def mutants(source: str) -> list[Site]:
    """Every mutant of `source`, numbered by its position in the list."""
    lines = source.splitlines()
    found = []
    for index, (node, change, _) in enumerate(_sites(ast.parse(source), lines)):
        line = getattr(node, "lineno", 0)

        def apply(tree: ast.AST, index: int = index) -> None:
            assert isinstance(tree, ast.Module)
            _sites(tree, lines)[index][2]()

        found.append(Site(line=line, change=change, apply=apply))
    return found


def mutated_source(source: str, site: Site) -> str:
    tree = ast.parse(source)
    site.apply(tree)
    tree = _DropMarked().visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


@dataclass
class Result:
    number: int
    line: int
    change: str
    code: str
    outcome: str  # killed | survived | timeout
    seconds: float


def _run_tests(
    workdir: Path, tests: tuple[str, ...], timeout: float, show_failure: bool = False
) -> tuple[str, float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    command = [PY, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", *tests]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - started
    elapsed = time.perf_counter() - started
    if done.returncode == 0:
        return "survived", elapsed
    # 1: a failing test; 2: one that cannot even be collected; 4: a conftest that cannot be
    # imported (pytest calls it a usage error; the unmutated run rules out a real one).
    if done.returncode in (1, 2, 4):
        if show_failure:
            print(done.stdout[-3000:], done.stderr[-2000:], file=sys.stderr)
        return "killed", elapsed
    raise SystemExit(f"pytest could not run (exit {done.returncode}):\n{done.stdout[-2000:]}")


def run(module: str, only: list[int] | None = None) -> list[Result]:
    path, tests = MODULES[module]
    source = (ROOT / path).read_text()
    sites = mutants(source)
    chosen = only if only is not None else range(len(sites))
    with tempfile.TemporaryDirectory(prefix=f"mutate-{module}-") as tmp:
        workdir = Path(tmp) / "tree"
        shutil.copytree(ROOT, workdir, ignore=shutil.ignore_patterns(*COPY_IGNORED), symlinks=True)
        for link in (".venv", "node_modules", ".cache"):  # tools the tests call, not copied
            if (ROOT / link).exists() and not (workdir / link).exists():
                (workdir / link).symlink_to((ROOT / link).resolve())
        target = workdir / path
        # The unmutated module as the mutants are written (ast.unparse), to time and check.
        target.write_text(ast.unparse(ast.parse(source)) + "\n")
        outcome, baseline = _run_tests(workdir, tests, timeout=3600, show_failure=True)
        if outcome != "survived":
            raise SystemExit(f"the tests of {module} fail without any mutant: fix them first")
        print(
            f"{module}: {len(sites)} mutants of {path}; tests pass in {baseline:.0f} s", flush=True
        )
        results = []
        for number in chosen:
            site = sites[number]
            target.write_text(mutated_source(source, site))
            outcome, seconds = _run_tests(workdir, tests, timeout=3 * baseline + 30)
            code = source.splitlines()[site.line - 1].strip()
            results.append(Result(number, site.line, site.change, code, outcome, seconds))
            print(
                f"  #{number:<3} line {site.line:<4} {site.change:<22} {outcome:<8} "
                f"{seconds:5.1f} s  {code[:60]}",
                flush=True,
            )
        target.write_text(source)
    return results


def summary(module: str, results: list[Result]) -> str:
    killed = sum(r.outcome != "survived" for r in results)
    lines = [
        f"{module}: {killed} of {len(results)} mutants killed "
        f"({100 * killed / max(len(results), 1):.0f} %), "
        f"{sum(r.outcome == 'timeout' for r in results)} of them by a timeout"
    ]
    lines += [
        f"  survived #{r.number} line {r.line}: {r.change}  ({r.code})"
        for r in results
        if r.outcome == "survived"
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", choices=sorted(MODULES))
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument(
        "--only", type=int, nargs="+", help="run only these mutants (their numbers)"
    )
    args = parser.parse_args(argv)
    path, _ = MODULES[args.module]
    source = (ROOT / path).read_text()
    if args.list:
        for number, site in enumerate(mutants(source)):
            code = source.splitlines()[site.line - 1].strip()
            print(f"#{number:<3} line {site.line:<4} {site.change:<22} {code[:70]}")
        return 0
    results = run(args.module, args.only)
    text = summary(args.module, results)
    print(text)
    if args.only is None:
        report = ROOT / ".build" / "mutate" / f"{args.module}.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
