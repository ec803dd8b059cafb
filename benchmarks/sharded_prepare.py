"""Benchmark: prepare.py on one processing instance and sharded across N (`--shard` on each
instance, then the `--parts-dir` merge), at a given row count.

The sample data is generated once as `--files` CSV files (a producer's version; 10M rows are
written file by file, never as one frame) outside the measured processes. Each instance runs
prepare.py as a separate process on its share of the files, dealt out by key as
ShardedByS3Key deals them (hard links, no copy); the instances run one after another, so each
is measured alone (on SageMaker they run at once on their own machines). Reported per run:
rows per second of each instance (its rows over its own wall time), the largest peak resident
memory of any instance (its own rusage, from wait4), and the merge's wall time and peak. The
single-instance Prepare is measured the same way.

    python -m benchmarks.sharded_prepare                          # 1M rows, 1 and 4 instances
    python -m benchmarks.sharded_prepare --rows 10000000 --instances 4 --files 40
    python -m benchmarks.sharded_prepare --time-split      # split by an event_time column

With `--time-split` the rows get an `event_time` column (whole hours over a year, seeded) and
Prepare splits by it: the instances then leave their rows unplaced and the merge places and
writes them (prepare/shard_placing.py), so the merge's share of the work grows.

The merge holds one feature column of the version at a time per CPU (see
prepare/shard_merge.py): the table prints its peak in bytes per row of the version, and its
CPU seconds (user + system), which a loaded machine does not inflate as it does wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / ".build" / "bench-sharded-prepare"
CHUNK = 1_000_000


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "SM_"))}
    return {"OMP_WAIT_POLICY": "PASSIVE", **keep}


def _code_dir(workdir: Path) -> Path:
    steps = REPO / "pipeline_code" / "steps"
    code = workdir / "code-prepare"
    shutil.rmtree(code, ignore_errors=True)
    shutil.copytree(steps / "prepare", code, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(steps / "common", code / "common", ignore=shutil.ignore_patterns("__py*"))
    return code


def version(rows: int, files: int, workdir: Path, timed: bool = False) -> Path:
    """`rows` sample rows as `files` CSV files (generated at most CHUNK rows at a time), with
    an `event_time` column when `timed`."""
    sys.path.insert(0, str(REPO))
    import numpy as np

    from pipeline_code import sample_data

    folder = workdir / f"data-{rows}-{files}{'-timed' if timed else ''}"
    if (folder / "_SUCCESS").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-rows // files)
    for number in range(files):
        count = min(per_file, rows - number * per_file)
        path = folder / f"part-{number:04d}.csv"
        for start in range(0, count, CHUNK):
            frame = sample_data.generate(min(CHUNK, count - start), 7 + number * 1000 + start)
            if timed:
                rng = np.random.default_rng(number * 1000 + start)
                frame["event_time"] = rng.integers(0, 365 * 24, len(frame)) * 3600
            frame.to_csv(path, index=False, header=start == 0, mode="w" if start == 0 else "a")
    (folder / "_SUCCESS").write_text("")
    return folder


def _run(
    code: Path, arguments: list[str], host: str, workdir: Path, hosts: list[str] | None = None
) -> dict[str, Any]:
    config = workdir / f"config-{host}" / "resourceconfig.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"current_host": host, "hosts": hosts or [host]}))
    env = _env() | {"FAILURE_REASON_FILE": str(workdir / f"failure-{host}")}
    # shard_parts reads the host from SageMaker's path: point it at this host's file.
    command = [
        sys.executable,
        "-c",
        "import runpy, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "import shard_parts; shard_parts.RESOURCE_CONFIG = Path(sys.argv[2]); "
        "sys.argv = [sys.argv[1] + '/prepare.py', *sys.argv[3:]]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')",
        str(code),
        str(config),
        *arguments,
    ]
    started = time.perf_counter()
    with (workdir / f"log-{host}.txt").open("w") as log:
        process = subprocess.Popen(command, cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"prepare.py failed on {host}: see {workdir}/log-{host}.txt")
    cpu = usage.ru_utime + usage.ru_stime
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": usage.ru_maxrss / 1024}


def run(data: Path, instances: int, workdir: Path, timed: bool = False) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from pipeline_code import sample_data

    code = _code_dir(workdir)
    schema = ["--schema", json.dumps(sample_data.sample_schema())]
    schema += ["--time-column", "event_time"] if timed else []
    out = workdir / f"run-{instances}"
    shutil.rmtree(out, ignore_errors=True)
    files = sorted(p for p in data.glob("*.csv"))
    if instances == 1:
        one = _run(code, ["--input-dir", str(data), "--output-dir", str(out), *schema], "one", out)
        report = json.loads((out / "report" / "split_report.json").read_text())
        rows = report["input"]["rows"]
        return {"instances": 1, "rows": rows, "per_instance": [one | {"rows": rows}], "merge": None}
    uploaded = out / "uploaded"
    per_instance = []
    for rank in range(instances):
        host = f"algo-{rank + 1}"
        share = out / f"in-{host}"
        share.mkdir(parents=True)
        for file in files[rank::instances]:
            os.link(file, share / file.name)
        result = _run(
            code,
            ["--input-dir", str(share), "--output-dir", str(uploaded), *schema, "--shard"],
            host,
            out,
            [f"algo-{number}" for number in range(1, instances + 1)],
        )
        summary = json.loads((uploaded / "parts" / f"summary-{host}.json").read_text())
        per_instance.append(result | {"rows": sum(f["rows"] for f in summary["files"])})
    merge = _run(
        code,
        ["--parts-dir", str(uploaded), "--output-dir", str(out / "merged"), *schema],
        "merge",
        out,
    )
    return {
        "instances": instances,
        "rows": sum(r["rows"] for r in per_instance),
        "per_instance": per_instance,
        "merge": merge,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="sample rows (1,000,000)")
    parser.add_argument("--files", type=int, default=8, help="files of the version (8)")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 4], help="(1 4)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument(
        "--time-split",
        action="store_true",
        help="split by an event_time column (default: a content-hash split)",
    )
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = version(args.rows, args.files, args.workdir, args.time_split)
    results = [run(data, n, args.workdir, args.time_split) for n in args.instances]
    print(
        f"{'instances':>9} {'rows':>11} {'inst. rows/s (min-max)':>23} {'inst. peak MiB':>14} "
        f"{'merge s':>8} {'merge CPU s':>11} {'merge MiB':>9} {'merge B/row':>11} "
        f"{'1-inst. CPU s':>13}"
    )
    for r in results:
        speeds = [p["rows"] / p["seconds"] for p in r["per_instance"] if p["rows"]]
        peak = max(p["peak_mib"] for p in r["per_instance"])
        merge = r["merge"] or {"seconds": 0.0, "cpu_seconds": 0.0, "peak_mib": 0.0}
        alone = r["per_instance"][0]["cpu_seconds"] if r["instances"] == 1 else 0.0
        per_row = merge["peak_mib"] * 2**20 / r["rows"] if r["merge"] else peak * 2**20 / r["rows"]
        print(
            f"{r['instances']:>9} {r['rows']:>11,} "
            f"{min(speeds):>11,.0f}-{max(speeds):<11,.0f} {peak:>14.0f} "
            f"{merge['seconds']:>8.1f} {merge['cpu_seconds']:>11.1f} {merge['peak_mib']:>9.0f} "
            f"{per_row:>11.0f} {alone:>13.1f}"
        )
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
