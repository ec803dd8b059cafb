"""`make bench`: time the things DESIGN.md sets targets for and print one table.

    import aws_cdk     a bare `import aws_cdk`, the yardstick for synth (same run, same load)
    synth (cold)       `cdk synth` of one environment after deleting the cached definition
    synth (unchanged)  the same again: the definition is reused, not regenerated
    test suite         `make test`'s pytest command (both cores; skip with --no-tests)
    local pipeline     benchmarks/local_pipeline.py (prepare -> train -> evaluate per size)
    distributed        benchmarks/distributed_training.py (1M rows: 1 and 2 workers over loopback)
    sharded prepare    benchmarks/sharded_prepare.py (1M rows: 1 and 4 processing instances)
    sharded evaluate   benchmarks/sharded_evaluate.py (1M test rows: 1 and 2 processing instances)
    gate power         benchmarks/gate_power.py (equal models pass, worse by 0.03 AUC fails)
    trigger burst      benchmarks/trigger_burst.py (10,000 events, 100 interleaved versions)

Each part runs as its own process, exactly as a user would run it, and is reported as wall time
and CPU-seconds (user + system of the process and its children): on a shared machine the
CPU-seconds are the steadier number. Synth is also given as a ratio to the bare `import aws_cdk`
measured just before it. Results depend on the machine: record them in the README together with
`nproc`, the memory size and the load average printed at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CDK = str(ROOT / "node_modules" / ".bin" / "cdk")


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # user + system seconds of the command and every process it waited for

    def __str__(self) -> str:
        return f"{self.wall:.1f} s ({self.cpu:.1f} CPU-s)"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(title: str, command: list[str], env: dict[str, str] | None = None) -> Timing:
    print(f"==> {title}: {' '.join(command)}", flush=True)
    cpu_before, started = _children_cpu(), time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})})
    timing = Timing(time.perf_counter() - started, _children_cpu() - cpu_before)
    if result.returncode != 0:
        raise SystemExit(f"{title} failed (exit {result.returncode})")
    return timing


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
    rows.append((f"make synth ({args.env}, definition regenerated)", str(cold), "≤ 12 s"))
    bare = _timed("bare import aws_cdk", [PY, "-c", "import aws_cdk"])
    rows.append(("import aws_cdk (the yardstick)", str(bare), ""))
    warm = _timed("synth, definition unchanged", synth)
    ratio = f"{warm.wall / bare.wall:.1f}x wall, {warm.cpu / bare.cpu:.1f}x CPU"
    rows.append((f"make synth ({args.env}, definition unchanged)", str(warm), "≤ 12 s"))
    rows.append(("  as a multiple of import aws_cdk", ratio, "≤ 6x"))
    if not args.no_tests:
        test_command = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"]
        tests = _timed("test suite", [*test_command, "--dist", "loadgroup"])
        rows.append(("make test (after install)", str(tests), "≤ 120 s, ≤ ~200 CPU-s"))
    _timed("local pipeline", [PY, "benchmarks/local_pipeline.py", "--rows", *map(str, args.rows)])
    rows.append(("local pipeline", "see the table above", "1M rows ≤ 60 s"))
    _timed("distributed training", [PY, "-m", "benchmarks.distributed_training"])
    rows.append(("distributed training", "see the table above", ""))
    _timed("sharded prepare", [PY, "-m", "benchmarks.sharded_prepare"])
    rows.append(("sharded prepare", "see the table above", ""))
    _timed("sharded evaluate", [PY, "-m", "benchmarks.sharded_evaluate"])
    rows.append(("sharded evaluate", "see the table above", ""))
    _timed("gate power", [PY, "-m", "benchmarks.gate_power"])
    rows.append(("gate power", "see the table above", "equal ≥ 95 %, worse fails ≥ 80 % (100k)"))
    _timed("trigger burst", [PY, "benchmarks/trigger_burst.py"])
    rows.append(("trigger burst", "see the table above", "exactly one execution per version"))

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nMachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load {load}")
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'result':<28}  target")
    for what, result, target in rows:
        print(f"{what:<{width}}  {result:<28}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
