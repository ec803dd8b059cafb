"""Benchmark: train.py on one worker and on N workers over loopback, at a given row count.

The sample data is generated and prepared once (prepare.py with `--train-shards N`, and
without for one worker), outside the measured processes. Each training then runs train.py as
SageMaker runs it (the step folder with `common/`, SM_* variables; for N workers SM_HOSTS,
SM_CURRENT_HOST and one train shard per host, as ShardedByS3Key delivers it). Reported per
run: wall time until the last host ends (read + train + write), train rows per second of that
wall time, rounds trained, the largest peak resident memory of any one host (each host's own
rusage, from wait4), and the validation AUC the master recorded. Each host's log is
`<workdir>/run-<workers>/log-<rank>.txt`.

    python -m benchmarks.distributed_training                     # 1M rows, 1 and 2 workers
    python -m benchmarks.distributed_training --rows 200000 --workers 1 2 4

Boosting is fixed at `--rounds` rounds (early stopping effectively off) so rows per second
compare like with like. On one machine the workers share its cores: this measures the cost of
the protocol and each host's memory, not the speed-up of separate instances.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "pipeline_code" / "steps"
DEFAULT_WORKDIR = REPO / ".build" / "bench-distributed-training"


def _env(**variables: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "SM_"))}
    return {"OMP_WAIT_POLICY": "PASSIVE", **keep, **variables}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _code_dir(step: str, workdir: Path) -> Path:
    """The step as SageMaker receives it: its folder with `common/` inside."""
    code = workdir / f"code-{step}"
    shutil.rmtree(code, ignore_errors=True)
    shutil.copytree(STEPS / step, code, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(STEPS / "common", code / "common", ignore=shutil.ignore_patterns("__py*"))
    return code


def prepare(rows: int, workers: int, workdir: Path) -> Path:
    """Sample data prepared into `workdir/prepared-<workers>`; returns that folder."""
    sys.path.insert(0, str(REPO))
    from pipeline_code import sample_data

    data = workdir / f"data-{rows}" / "data.csv"
    if not data.exists():
        sample_data.write(sample_data.generate(rows, 7), data)
    out = workdir / f"prepared-{rows}-{workers}"
    if not out.exists():
        schema = json.dumps(sample_data.sample_schema())
        shards = ["--train-shards", str(workers)] if workers > 1 else []
        command = [sys.executable, str(_code_dir("prepare", workdir) / "prepare.py")]
        arguments = ["--input-dir", str(data.parent), "--output-dir", str(out), "--schema", schema]
        subprocess.run([*command, *arguments, *shards], check=True, env=_env())
    return out


def train(prepared: Path, workers: int, rounds: int, workdir: Path) -> dict[str, Any]:
    """Train with `workers` hosts on this machine; timings, memory and the model's AUC."""
    code = _code_dir("train", workdir)
    run = workdir / f"run-{workers}"
    shutil.rmtree(run, ignore_errors=True)
    hosts = [f"127.0.0.{rank + 1}" for rank in range(workers)]
    port = str(_free_port())
    arguments = ["--num_round", str(rounds), "--early_stopping_rounds", str(rounds)]
    processes = []
    started = time.perf_counter()
    for rank, host in enumerate(hosts):
        variables = {
            "SM_CHANNEL_VALIDATION": str(prepared / "validation"),
            "SM_MODEL_DIR": str(run / f"model-{rank}"),
            "FAILURE_REASON_FILE": str(run / f"failure-{rank}"),
        }
        if workers == 1:
            variables["SM_CHANNEL_TRAIN"] = str(prepared / "train")
        else:
            channel = run / f"train-{rank}"
            channel.mkdir(parents=True)
            shard = prepared / "train" / "shards" / f"part-{rank:05d}.csv"
            os.link(shard, channel / shard.name)
            # inputdataconfig.json as SageMaker writes it: train.py requires the train channel
            # ShardedByS3Key when it runs on several hosts.
            config = run / "config"
            config.mkdir(exist_ok=True)
            (config / "inputdataconfig.json").write_text(
                json.dumps({"train": {"S3DistributionType": "ShardedByS3Key"}})
            )
            variables |= {
                "SM_INPUT_CONFIG_DIR": str(config),
                "SM_CHANNEL_TRAIN": str(channel),
                "SM_CHANNEL_TRAIN_RECORD": str(prepared / "train"),
                "SM_HOSTS": json.dumps(hosts),
                "SM_CURRENT_HOST": host,
                "XGBOOST_TRACKER_PORT": port,
            }
        command = [sys.executable, str(code / "train.py"), *arguments]
        command += ["--checkpoint_dir", str(run / f"ck-{rank}")]
        run.mkdir(parents=True, exist_ok=True)
        with (run / f"log-{rank}.txt").open("w") as log:
            processes.append(
                subprocess.Popen(
                    command, cwd=code, env=_env(**variables), stdout=log, stderr=subprocess.STDOUT
                )
            )
    codes, peaks = [], []
    for process in processes:
        # wait4: each host's own rusage (peak resident set), not every child's so far.
        _, status, usage = os.wait4(process.pid, 0)
        codes.append(os.waitstatus_to_exitcode(status))
        peaks.append(usage.ru_maxrss / 1024)
    seconds = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"training with {workers} worker(s) failed: exit codes {codes}")
    metadata = json.loads((run / "model-0" / "metadata" / "model-metadata.json").read_text())
    return {
        "workers": workers,
        "train_rows": metadata["train_rows"],
        "rounds": metadata["rounds_trained"],
        "seconds": seconds,
        "rows_per_second": metadata["train_rows"] / seconds,
        "peak_rss_mib": max(peaks),
        "validation_auc": metadata["best_validation_auc"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="sample rows (1,000,000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="(1 2)")
    parser.add_argument("--rounds", type=int, default=100, help="boosting rounds (100)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for workers in args.workers:
        prepared = prepare(args.rows, workers, args.workdir)
        results.append(train(prepared, workers, args.rounds, args.workdir))
    print(f"{'workers':>7} {'train rows':>11} {'rounds':>6} {'wall s':>7} {'rows/s':>9} ", end="")
    print(f"{'peak MiB':>9} {'val auc':>7}")
    for r in sorted(results, key=lambda r: r["workers"]):
        print(
            f"{r['workers']:>7} {r['train_rows']:>11,} {r['rounds']:>6} {r['seconds']:>7.1f} "
            f"{r['rows_per_second']:>9,.0f} {r['peak_rss_mib']:>9.0f} {r['validation_auc']:>7.4f}"
        )
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
