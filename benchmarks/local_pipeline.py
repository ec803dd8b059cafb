"""Benchmark: the local pipeline (prepare -> train -> evaluate) at growing row counts.

Each size runs in its own subprocess, so its peak memory (the child's maximum resident set
size, from the kernel's rusage of that child) is its own. The sample data is generated first,
outside the measured process. Prints wall time per step, peak memory, and how each grows per
10x rows (10 = linear). Target (DESIGN.md): 1M rows through prepare -> train -> evaluate in at
most 60 s on 2 cores, memory bounded.

    python -m benchmarks.local_pipeline                      # 10k, 100k, 1M rows
    python -m benchmarks.local_pipeline --rows 10000 100000
    python -m benchmarks.local_pipeline --rows 1000000 --problem multiclass   # or regression

`--problem multiclass` or `regression` runs the same sample rows with a target derived from
their features (`typed_target`): five classes `A`..`E` (quantiles of a noisy score), or a
continuous amount; the local run gets `--target` and `--problem`, infers the features and
gates on the problem type's default local metric.

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
PROBLEMS = ("binary", "multiclass", "regression")
#: The derived target column of a multi-class or regression run.
TYPED_TARGETS = {"multiclass": "segment", "regression": "spend_next_month"}
CLASSES = 5


def typed_target(frame: Any, problem: str, seed: int = 7) -> Any:
    """The sample rows with `is_fraud` replaced by a target of `problem` that depends on the
    features (with noise, so the model has something to learn and something it cannot)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    score = (
        np.log1p(frame["amount"].to_numpy(np.float64))
        + 0.8 * np.log1p(frame["ratio_to_median_amount"].to_numpy(np.float64))
        + 0.5 * frame["online_order"].to_numpy(np.float64)
        + 0.02 * frame["hour"].to_numpy(np.float64)
        + rng.normal(0.0, 0.5, len(frame))
    )
    out = frame.drop(columns=["is_fraud"])
    if problem == "multiclass":
        edges = np.quantile(score, np.linspace(0, 1, CLASSES + 1)[1:-1])
        out[TYPED_TARGETS[problem]] = np.array(list("ABCDE"))[np.searchsorted(edges, score)]
    else:
        out[TYPED_TARGETS[problem]] = np.round(20.0 * np.exp(score / 2), 2)
    return out


def child(rows: int, data: Path, workdir: Path, result: Path, problem: str = "binary") -> None:
    """Run the pipeline once in this process and write its step timings to `result`."""
    sys.path.insert(0, str(REPO))
    from pipeline_code import local_run

    started = time.perf_counter()
    typed = (
        ["--data", str(data), "--target", TYPED_TARGETS[problem], "--problem", problem]
        if problem != "binary"
        else []
    )
    settings = local_run.resolve_settings(local_run.parse_args(typed))
    outcome = local_run.run_pipeline(workdir, settings, data=data, rows=rows, log=lambda _: None)
    payload = {
        "rows": rows,
        "steps": {t.step: {"rows": t.rows, "seconds": t.seconds} for t in outcome.timings},
        "process_seconds": time.perf_counter() - started,
        "gate_passed": outcome.decision.passed,
        "metric": outcome.evaluation["gate"]["metric"],
        # the gate metric's value, whichever metric (auc, macro_f1, r2, ...) `metric` names
        "metric_value": outcome.evaluation["gate"]["challenger"],
        "self_max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    result.write_text(json.dumps(payload), encoding="utf-8")


def measure(rows: int, workdir: Path, problem: str = "binary") -> dict[str, Any]:
    """Generate the data, then run the pipeline in a child; timings and the child's peak RSS."""
    from pipeline_code import sample_data

    name = str(rows) if problem == "binary" else f"{problem}-{rows}"
    data = workdir / f"data-{name}" / "part-0.csv"
    if not data.exists():
        frame = sample_data.generate(rows, seed=42)
        sample_data.write(frame if problem == "binary" else typed_target(frame, problem), data)
    result = workdir / f"result-{name}.json"
    log = workdir / f"run-{name}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    command = [
        sys.executable, "-m", "benchmarks.local_pipeline", "--child",
        "--rows", str(rows), "--data", str(data),
        "--workdir", str(workdir / f"run-{name}"), "--result", str(result),
        "--problem", problem,
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
    header += f" {'peak MiB':>9} {results[0].get('metric', 'auc'):>8}"
    lines = [header, "-" * len(header)]
    for i, result in enumerate(results):
        cells = " ".join(f"{values[i]:>11.2f}" for values in columns.values())
        lines.append(f"{rows[i]:>10,} {cells} {memory[i]:>9.0f} {result['metric_value']:>8.4g}")
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
    parser.add_argument("--problem", choices=PROBLEMS, default="binary")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.rows[0], args.data, args.workdir, args.result, args.problem)
        return 0

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    args.workdir.mkdir(parents=True, exist_ok=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"local pipeline benchmark ({args.problem}): {os.cpu_count()} CPUs, load average {load}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'PASSIVE (set for the runs)')}"
    )
    results = []
    for rows in sorted(args.rows):
        results.append(measure(rows, args.workdir, args.problem))
        print(f"  {rows:>10,} rows done in {results[-1]['child_wall_seconds']:.1f} s")
    print()
    print(table(results))
    for result in results:
        if result["rows"] == TARGET_ROWS:
            seconds = sum(result["steps"][s]["seconds"] for s in STEPS)
            verdict = "meets" if seconds <= TARGET_SECONDS else "MISSES"
            print(
                f"\n1M rows ({args.problem}): prepare+train+evaluate {seconds:.1f} s, "
                f"{verdict} the {TARGET_SECONDS:.0f} s target; peak "
                f"{result['peak_rss_mib']:.0f} MiB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
