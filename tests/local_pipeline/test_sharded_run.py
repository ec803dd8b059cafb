"""`make local-run PROCESSORS=3`: the training definition for three processing instances runs
PrepareShards as three local hosts (algo-1..3, each its resourceconfig.json and its share of
the version's files, ShardedByS3Key; with two files one host gets none), Prepare merges their
parts on one host, and every Prepare output is byte for byte the single-instance run's (the
test split's rows in one file per host), so the model is the same too; EvaluateShards predicts
the test files on three hosts (ShardedByS3Key) and Evaluate, reading their predictions, writes
the single-instance run's evaluation.json byte for byte; with a time split as well."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from mlops_config import load_config
from pipeline_code import sample_data
from pipeline_code.local_pipeline import cli, runner, sources, trigger
from pipeline_code.local_pipeline.bucket import LocalS3
from pipeline_code.local_pipeline.errors import LocalPipelineError
from stacks.pipeline_definitions import GeneratedPipelines, generate_pipelines
from tests.local_pipeline.conftest import FAST, ROWS, definition, step
from tests.steps.test_prepare_shards import joined_test_split

slow = pytest.mark.slow  # two small runs (about 60 s)

PROCESSORS = 3
HOSTS = [f"algo-{n}" for n in range(1, PROCESSORS + 1)]


def _generated(processors: int, time_column: str | None = None) -> GeneratedPipelines:
    config = load_config("dev")
    pipeline = type(config.pipeline).model_validate(
        {**config.pipeline.model_dump(), "processing_instance_count": processors}
    )
    split = type(config.split).model_validate(
        {**config.split.model_dump(), "time_column": time_column}
    )
    return generate_pipelines(dataclasses.replace(config, pipeline=pipeline, split=split))


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample as a producer lands it in two files."""
    folder = tmp_path_factory.mktemp("data") / "transactions"
    frame = sample_data.generate(ROWS, 42)
    for number, rows in enumerate(np.array_split(np.arange(ROWS), 2)):
        sample_data.write(frame.iloc[rows].reset_index(drop=True), folder / f"part-{number}.csv")
    return folder


def _run_both(
    pipelines: dict[int, GeneratedPipelines],
    names: sources.LocalNames,
    version: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[int, tuple[runner.Run, Path]]:
    """The training pipeline on `version`, with each processing instance count."""
    done = {}
    for processors in (1, PROCESSORS):
        folder = tmp_path_factory.mktemp(f"processors-{processors}")
        source = definition(pipelines[processors], folder / "definition")
        options = runner.RunOptions(
            workdir=folder / "work",
            data=trigger.DataSource(path=version),
            parameters=dict(FAST),
            progress=lambda _: None,
        )
        done[processors] = (runner.run(source, names, options), folder / "work")
    return done


@pytest.fixture(scope="module")
def runs(
    generated: GeneratedPipelines,
    names: sources.LocalNames,
    version: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[int, tuple[runner.Run, Path]]:
    pipelines = {1: generated, PROCESSORS: _generated(PROCESSORS)}
    return _run_both(pipelines, names, version, tmp_path_factory)


def _prepare_outputs(run: runner.Run, workdir: Path) -> dict[str, bytes]:
    """Prepare's outputs by name; a sharded run's test files joined back as test/test.csv."""
    s3 = LocalS3(workdir / "s3")
    found = {}
    for output in run.result.properties["Prepare"]["ProcessingOutputConfig"]["Outputs"]:
        for relative, file in s3.objects(output["S3Output"]["S3Uri"]):
            found[f"{output['OutputName']}/{relative}"] = file.read_bytes()
    return joined_test_split(found)


@slow
def test_three_processing_hosts_each_read_their_share(
    runs: dict[int, tuple[runner.Run, Path]],
) -> None:
    run, _ = runs[PROCESSORS]
    names = ("PrepareShards", "Prepare", "Train", "EvaluateShards", "Evaluate")
    assert [step(run, name).status for name in names] == ["Succeeded"] * 5
    shards_dir = run.run_dir / "steps" / "PrepareShards"
    received = []
    for host in HOSTS:
        ml = shards_dir / host / "container" / "opt" / "ml"
        config = json.loads((ml / "config" / "resourceconfig.json").read_text())
        assert (config["current_host"], config["hosts"]) == (host, HOSTS)
        data = ml / "processing" / "input" / "data"
        received.append(sorted(p.name for p in data.rglob("*.csv")))
    # ShardedByS3Key by key: two objects for three hosts, the third gets none and succeeds.
    assert received == [["part-0.csv"], ["part-1.csv"], []]
    # One Prepare (the merge) on one host.
    assert (run.run_dir / "steps" / "Prepare" / "container").is_dir()
    # The test split in three files, one to each EvaluateShards host, under their own names;
    # labels.json is not below the test files' prefix, so it takes no host's place.
    predicted = []
    for host in HOSTS:
        test = run.run_dir / "steps" / "EvaluateShards" / host / "container" / "opt" / "ml"
        predicted.append(sorted(p.name for p in (test / "processing" / "test").rglob("*")))
    assert predicted == [["test-00000.csv"], ["test-00001.csv"], ["test-00002.csv"]]


@slow
def test_the_merged_prepare_equals_the_single_instance_prepare(
    runs: dict[int, tuple[runner.Run, Path]],
) -> None:
    one, three = (_prepare_outputs(*runs[n]) for n in (1, PROCESSORS))
    assert set(one) >= {"train/train.csv", "test/test.csv", "baseline/statistics.json"}
    assert one == three


def _evaluation(run: runner.Run, workdir: Path) -> Path:
    outputs = run.result.properties["Evaluate"]["ProcessingOutputConfig"]["Outputs"]
    (uri,) = [o["S3Output"]["S3Uri"] for o in outputs]
    (file,) = [f for r, f in LocalS3(workdir / "s3").objects(uri) if r == "evaluation.json"]
    return file


@slow
def test_the_same_data_gives_the_same_model_and_gate(
    runs: dict[int, tuple[runner.Run, Path]],
) -> None:
    one, three = (json.loads(_evaluation(*runs[n]).read_text()) for n in (1, PROCESSORS))
    assert one["gate"]["decision"] == three["gate"]["decision"]
    assert one["gate"]["challenger"] == three["gate"]["challenger"]


@slow
def test_evaluate_on_evaluate_shards_predictions_writes_the_single_instance_report(
    runs: dict[int, tuple[runner.Run, Path]],
) -> None:
    """evaluation.json byte for byte but for where the run's model was (the local runner
    mounts it below each run's own folder; SageMaker at /opt/ml/processing/model) and its
    archive's SHA-256 (each training job packs its own model.tar.gz): every metric, interval,
    gate value and section is the single instance's. (tests/steps/test_evaluate_shards.py
    compares the whole file for one model.)"""
    reports = []
    for processors in (1, PROCESSORS):
        text = _evaluation(*runs[processors]).read_text()
        report = json.loads(text)
        for value in (report["challenger_source"], report["lineage"]["model_artifact_sha256"]):
            text = text.replace(json.dumps(value), '"<this run\'s>"')
        reports.append(text)
    assert reports[0] == reports[1]
    run, workdir = runs[PROCESSORS]
    outputs = run.result.properties["EvaluateShards"]["ProcessingOutputConfig"]["Outputs"]
    (uri,) = [o["S3Output"]["S3Uri"] for o in outputs]
    assert "/shard-parts/" in uri
    written = sorted(r for r, _ in LocalS3(workdir / "s3").objects(uri))
    assert written == [f"test-{n:05d}.csv.predictions.parquet" for n in range(PROCESSORS)]


def test_processors_out_of_range_or_with_a_definition_file_are_refused(tmp_path: Path) -> None:
    for bad in ("0", "11"):
        args = cli.parse_args(["run", "--processors", bad])
        with pytest.raises(LocalPipelineError, match=f"--processors {bad} is not allowed: 1 to"):
            cli.run(args)
    file = tmp_path / "training.json"
    file.write_text("{}")
    args = cli.parse_args(["run", "--processors", "2", "--definition", str(file)])
    with pytest.raises(LocalPipelineError, match="--processors works with the generated"):
        cli.run(args)


@slow
def test_a_time_split_across_processing_hosts_equals_the_single_instance_run(
    names: sources.LocalNames, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """split.time_column: the merge computes the cut-offs from every host's times."""
    folder = tmp_path_factory.mktemp("timed") / "transactions"
    frame = sample_data.generate(ROWS, 43)
    frame["event_time"] = np.random.default_rng(0).integers(0, 90, ROWS) * 86400
    for number, rows in enumerate(np.array_split(np.arange(ROWS), 2)):
        sample_data.write(frame.iloc[rows].reset_index(drop=True), folder / f"part-{number}.csv")
    pipelines = {n: _generated(n, "event_time") for n in (1, PROCESSORS)}
    runs = _run_both(pipelines, names, folder, tmp_path_factory)
    one, three = (_prepare_outputs(*runs[n]) for n in (1, PROCESSORS))
    rule = json.loads(one["report/split_report.json"])["split_rule"]
    assert rule["method"] == "time" and rule["time_column"] == "event_time"
    assert one == three
