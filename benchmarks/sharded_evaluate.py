"""Benchmark: EvaluateShards (evaluate.py --predictions-output) on one processing instance and
on N, for a test split of a given size, then Evaluate on the predictions.

The sample data is prepared once outside the measured processes: prepare.py on a training
version (`--train-rows`), a challenger and a worse champion trained on it (`--rounds` and
`--rounds // 2` rounds, depth 6; `--early_stopping_rounds` equals the rounds, so every round is
trained, but train.py keeps the trees up to the best validation round, as it always does),
and prepare.py --all-to-test on `--rows` more rows for the test split, cut into N files as the
sharded Prepare cuts it
(prepare/split_test_files.py). Each instance runs evaluate.py as a separate process on its
share of the files (dealt out by key as ShardedByS3Key deals them), one after another, so
each is measured alone (on SageMaker they run at once on their own machines): its wall time,
CPU seconds and peak resident memory (its own rusage, from wait4). The step's time on N
machines is its slowest instance's. Evaluate reading the predictions is measured the same way.

    python -m benchmarks.sharded_evaluate                   # 1M test rows, 1 and 2 instances
    python -m benchmarks.sharded_evaluate --rows 200000 --instances 4 1
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

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "pipeline_code" / "steps"
DEFAULT_WORKDIR = REPO / ".build" / "bench-sharded-evaluate"


def _run(argv: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s, peak MiB) of a step script run as its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "SM_"))}
    env["PYTHONPATH"] = str(STEPS)  # `common`, which the container has beside the script
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def prepare_data(workdir: Path, rows: int, train_rows: int, rounds: int) -> Path:
    sys.path.insert(0, str(REPO))
    from pipeline_code import sample_data

    schema = json.dumps(sample_data.sample_schema())
    for name, count, seed, mode in (
        ("train", train_rows, 1, []),
        ("test", rows, 2, ["--all-to-test"]),
    ):
        source = workdir / f"{name}-in"
        source.mkdir(parents=True)
        sample_data.write(sample_data.generate(count, seed), source / "data.csv")
        argv = [str(STEPS / "prepare" / "prepare.py"), "--input-dir", str(source)]
        _run([*argv, "--output-dir", str(workdir / name), "--schema", schema, *mode])
    data = workdir / "train"
    target = sample_data.sample_schema()["target"]
    for model, count in (("challenger", rounds), ("champion", rounds // 2)):
        _run([str(STEPS / "train" / "train.py"), "--target", target, "--num_round", str(count),
              "--max_depth", "6", "--early_stopping_rounds", str(count), "--train",
              str(data / "train"), "--validation", str(data / "validation"), "--model_dir",
              str(workdir / model),
              "--checkpoint_dir", str(workdir / f"ck-{model}")])  # fmt: skip
    return workdir / "test" / "test"


def measure(workdir: Path, test: Path, instances: int, target: str) -> dict[str, float]:
    sys.path.insert(0, str(STEPS / "prepare"))
    from split_test_files import split_test_file

    run_dir = workdir / f"instances-{instances}"
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(test, run_dir / "test")
    rows = sum(1 for _ in (run_dir / "test" / "test.csv").open("rb")) - 1
    split_test_file(run_dir / "test" / "test.csv", rows, instances)
    objects = sorted((run_dir / "test").iterdir())
    evaluate = str(STEPS / "evaluate" / "evaluate.py")
    common = ["--model-dir", str(workdir / "challenger"), "--target", target,
              "--champion-model-dir", str(workdir / "champion")]  # fmt: skip
    hosts = []
    for host in range(instances):
        own = run_dir / f"algo-{host + 1}"
        own.mkdir()
        for item in objects[host::instances]:
            os.link(item, own / item.name)
        hosts.append(
            _run(
                [
                    evaluate,
                    *common,
                    "--test-dir",
                    str(own),
                    "--predictions-output",
                    str(run_dir / "predictions"),
                ]
            )  # fmt: skip
        )
    merge = _run([evaluate, *common, "--test-dir", str(run_dir / "test"), "--output-dir",
                  str(run_dir / "evaluation"), "--predictions-dir", str(run_dir / "predictions"),
                  "--floor", "0.5"])  # fmt: skip
    alone = None
    if instances == 1:  # today's single-instance Evaluate, predicting itself, for comparison
        alone = _run([evaluate, *common, "--test-dir", str(run_dir / "test"), "--output-dir",
                      str(run_dir / "alone"), "--floor", "0.5"])  # fmt: skip
        same = (run_dir / "alone" / "evaluation.json").read_bytes() == (
            run_dir / "evaluation" / "evaluation.json"
        ).read_bytes()
        print("single-instance Evaluate's evaluation.json identical:", same)
    predictions = sum(p.stat().st_size for p in (run_dir / "predictions").iterdir())
    return {
        "rows": rows,
        "instances": instances,
        **(
            {"predicting_evaluate_s": alone[0], "predicting_evaluate_cpu_s": alone[1]}
            if alone
            else {}
        ),
        "predictions_bytes_per_row": round(predictions / rows, 1),
        "slowest_instance_s": max(h[0] for h in hosts),
        "instance_cpu_s": [round(h[1], 1) for h in hosts],
        "instance_peak_mib": max(h[2] for h in hosts),
        "evaluate_s": merge[0],
        "evaluate_cpu_s": merge[1],
        "evaluate_peak_mib": merge[2],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="test rows (1M)")
    parser.add_argument("--train-rows", type=int, default=50_000, help="(50,000)")
    parser.add_argument("--rounds", type=int, default=300, help="challenger rounds (300)")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    test = prepare_data(args.workdir, args.rows, args.train_rows, args.rounds)
    sys.path.insert(0, str(REPO))
    from pipeline_code import sample_data

    target = sample_data.sample_schema()["target"]
    results = [measure(args.workdir, test, n, target) for n in args.instances]
    reports = {
        n: (args.workdir / f"instances-{n}" / "evaluation" / "evaluation.json").read_bytes()
        for n in args.instances
    }
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for result in results:
        print(json.dumps(result))
    print("evaluation.json identical:", len(set(reports.values())) == 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
