"""`make bench`: time the things DESIGN.md sets targets for and print one table.

    synth (cold)       `cdk synth` of one environment after deleting the cached definition
    synth (unchanged)  the same again: the definition is reused, not regenerated
    test suite         `pytest` of the whole suite (skip with --no-tests)
    local pipeline     benchmarks/local_pipeline.py (prepare -> train -> evaluate per size)
    gate power         benchmarks/gate_power.py (equal models pass, worse by 0.03 AUC fails)
    trigger burst      benchmarks/trigger_burst.py (10,000 events, 100 interleaved versions)

Each part runs as its own process, exactly as a user would run it. Results depend on the
machine: record them in the README together with `nproc` and the memory size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CDK = str(ROOT / "node_modules" / ".bin" / "cdk")


def _timed(title: str, command: list[str], env: dict[str, str] | None = None) -> float:
    print(f"==> {title}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{title} failed (exit {result.returncode})")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev", help="environment to synthesize (dev)")
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help="local pipeline sizes (10k 100k 1M)",
    )
    parser.add_argument("--no-tests", action="store_true", help="skip timing the test suite")
    args = parser.parse_args(argv)

    rows: list[tuple[str, str, str]] = []
    synth = [CDK, "synth", "--quiet", "-c", f"env={args.env}"]
    shutil.rmtree(ROOT / ".build" / "pipelines" / args.env, ignore_errors=True)
    cold = _timed("synth, definition regenerated", synth)
    rows.append((f"make synth ({args.env}, definition regenerated)", f"{cold:.1f} s", "≤ 12 s"))
    warm = _timed("synth, definition unchanged", synth)
    rows.append((f"make synth ({args.env}, definition unchanged)", f"{warm:.1f} s", "≤ 12 s"))
    if not args.no_tests:
        tests = _timed("test suite", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
        rows.append(("make test (after install)", f"{tests:.0f} s", "≤ 120 s"))
    _timed("local pipeline", [PY, "benchmarks/local_pipeline.py", "--rows", *map(str, args.rows)])
    rows.append(("local pipeline", "see the table above", "1M rows ≤ 60 s"))
    _timed("gate power", [PY, "-m", "benchmarks.gate_power"])
    rows.append(("gate power", "see the table above", "equal ≥ 95 %, worse fails ≥ 80 % (100k)"))
    _timed("trigger burst", [PY, "benchmarks/trigger_burst.py"])
    rows.append(("trigger burst", "see the table above", "exactly one execution per version"))

    print(f"\nMachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'result':<22}  target")
    for what, result, target in rows:
        print(f"{what:<{width}}  {result:<22}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
