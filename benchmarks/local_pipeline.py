"""Benchmark: the local pipeline (prepare -> train -> evaluate) at growing row counts.

Each size runs in its own subprocess, so its peak memory (the child's maximum resident set
size, from the kernel's rusage of that child) is its own. The sample data is generated first,
outside the measured process. Prints wall time per step, peak memory, and how each grows per
10x rows (10 = linear). Target (DESIGN.md): 1M rows through prepare -> train -> evaluate in at
most 60 s on 2 cores, memory bounded.

    python -m benchmarks.local_pipeline                      # 10k, 100k, 1M rows
    python -m benchmarks.local_pipeline --rows 10000 100000

The children run with OMP_WAIT_POLICY=PASSIVE unless the variable is set: XGBoost's OpenMP
threads otherwise spin while waiting, which on a shared 2-core machine costs more than the
work itself.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROWS = (10_000, 100_000, 1_000_000)
DEFAULT_WORKDIR = REPO / ".build" / "bench-local-pipeline"
TARGET_ROWS = 1_000_000
TARGET_SECONDS = 60.0
STEPS = ("prepare", "train", "evaluate")


def child(rows: int, data: Path, workdir: Path, result: Path) -> None:
    """Run the pipeline once in this process and write its step timings to `result`."""
    sys.path.insert(0, str(REPO))
    from pipeline_code import local_run

    started = time.perf_counter()
    settings = local_run.resolve_settings(local_run.parse_args([]))
    outcome = local_run.run_pipeline(workdir, settings, data=data, rows=rows, log=lambda _: None)
    payload = {
        "rows": rows,
        "steps": {t.step: {"rows": t.rows, "seconds": t.seconds} for t in outcome.timings},
        "process_seconds": time.perf_counter() - started,
        "gate_passed": outcome.decision.passed,
        "auc": outcome.evaluation["gate"]["challenger"],
        "self_max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    result.write_text(json.dumps(payload), encoding="utf-8")


def measure(rows: int, workdir: Path) -> dict[str, Any]:
    """Generate the data, then run the pipeline in a child; timings and the child's peak RSS."""
    from pipeline_code import sample_data

    data = workdir / f"data-{rows}" / "part-0.csv"
    if not data.exists():
        sample_data.write(sample_data.generate(rows, seed=42), data)
    result = workdir / f"result-{rows}.json"
    log = workdir / f"run-{rows}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    command = [
        sys.executable, "-m", "benchmarks.local_pipeline", "--child",
        "--rows", str(rows), "--data", str(data),
        "--workdir", str(workdir / f"run-{rows}"), "--result", str(result),
    ]  # fmt: skip
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=output)
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the max over all.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{rows:,} rows: the run failed (exit {process.returncode}); see {log}")
    measured = json.loads(result.read_text(encoding="utf-8"))
    measured["child_wall_seconds"] = wall
    measured["peak_rss_mib"] = usage.ru_maxrss / 1024
    return measured


def growth(values: list[float], rows: list[int]) -> list[str]:
    """Growth per 10x rows between consecutive sizes ("-" for the first)."""
    cells = ["-"]
    for i in range(1, len(values)):
        decades = math.log10(rows[i] / rows[i - 1])
        ratio = values[i] / values[i - 1] if values[i - 1] > 0 else float("nan")
        cells.append(f"x{ratio ** (1 / decades):.1f}" if decades > 0 else "-")
    return cells


def table(results: list[dict[str, Any]]) -> str:
    rows = [r["rows"] for r in results]
    columns: dict[str, list[float]] = {
        step: [r["steps"][step]["seconds"] for r in results] for step in STEPS
    }
    columns["pipeline"] = [sum(r["steps"][s]["seconds"] for s in STEPS) for r in results]
    columns["process"] = [r["child_wall_seconds"] for r in results]
    memory = [r["peak_rss_mib"] for r in results]
    header = f"{'rows':>10} " + " ".join(f"{name + ' s':>11}" for name in columns)
    header += f" {'peak MiB':>9} {'auc':>6}"
    lines = [header, "-" * len(header)]
    for i, result in enumerate(results):
        cells = " ".join(f"{values[i]:>11.2f}" for values in columns.values())
        lines.append(f"{rows[i]:>10,} {cells} {memory[i]:>9.0f} {result['auc']:>6.3f}")
    if len(results) > 1:
        lines.append("growth per 10x rows:")
        growths = {name: growth(values, rows) for name, values in columns.items()}
        growths["peak MiB"] = growth(memory, rows)
        for i in range(1, len(results)):
            cells = " ".join(f"{growths[name][i]:>11}" for name in columns)
            lines.append(f"{rows[i]:>10,} {cells} {growths['peak MiB'][i]:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS))
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.rows[0], args.data, args.workdir, args.result)
        return 0

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    args.workdir.mkdir(parents=True, exist_ok=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"local pipeline benchmark: {os.cpu_count()} CPUs, load average {load}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'PASSIVE (set for the runs)')}"
    )
    results = []
    for rows in sorted(args.rows):
        results.append(measure(rows, args.workdir))
        print(f"  {rows:>10,} rows done in {results[-1]['child_wall_seconds']:.1f} s")
    print()
    print(table(results))
    for result in results:
        if result["rows"] == TARGET_ROWS:
            seconds = sum(result["steps"][s]["seconds"] for s in STEPS)
            verdict = "meets" if seconds <= TARGET_SECONDS else "MISSES"
            print(
                f"\n1M rows: prepare+train+evaluate {seconds:.1f} s, {verdict} the "
                f"{TARGET_SECONDS:.0f} s target; peak {result['peak_rss_mib']:.0f} MiB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
