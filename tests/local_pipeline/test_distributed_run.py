"""`make local-run WORKERS=2`: the training definition for two instances runs as two local
worker processes (algo-1, algo-2) under SageMaker's contract (resourceconfig.json with
`current_host` and `hosts`, the train channel ShardedByS3Key, validation and the training data
record on both), they train one model over loopback, only algo-1 writes a model (the job's
model is the hosts' folders merged), and it scores the test split like single-worker
training (deterministic boosting: within 0.01 AUC, 5 % log loss, 0.01 mean probability)."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import log_loss, roc_auc_score

from mlops_config import load_config
from pipeline_code.local_pipeline import cli, container, runner, sources, training, training_hosts
from pipeline_code.local_pipeline.bucket import LocalS3
from pipeline_code.local_pipeline.errors import LocalPipelineError, StepError
from stacks.pipeline_definitions import GeneratedPipelines, generate_pipelines
from tests.local_pipeline.conftest import definition, execute, step

slow = pytest.mark.slow  # two small runs (about 60 s)

#: No row or column sampling: one and two workers then differ only by merged sketches.
DETERMINISTIC = {"Subsample": "1", "ColsampleBytree": "1"}


def _generated(workers: int) -> GeneratedPipelines:
    config = load_config("dev")
    pipeline = type(config.pipeline).model_validate(
        {**config.pipeline.model_dump(), "training_instance_count": workers}
    )
    return generate_pipelines(dataclasses.replace(config, pipeline=pipeline))


@pytest.fixture(scope="module")
def runs(
    generated: GeneratedPipelines,
    names: sources.LocalNames,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[int, tuple[runner.Run, Path]]:
    """The same sample trained by one worker (the suite's generated definition) and by two."""
    done = {}
    for workers in (1, 2):
        folder = tmp_path_factory.mktemp(f"workers-{workers}")
        pipelines = generated if workers == 1 else _generated(workers)
        source = definition(pipelines, folder / "definition")
        done[workers] = (execute(source, names, folder / "work", **DETERMINISTIC), folder / "work")
    return done


def _model(run: runner.Run, workdir: Path) -> xgb.Booster:
    uri = run.result.properties["Train"]["ModelArtifacts"]["S3ModelArtifacts"]
    with tarfile.open(LocalS3(workdir / "s3").path(uri)) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        booster = xgb.Booster()
        booster.load_model(bytearray(member.read()))
        return booster


def _test_split(run: runner.Run, workdir: Path) -> pd.DataFrame:
    outputs = run.result.properties["Prepare"]["ProcessingOutputConfig"]["Outputs"]
    (test,) = [o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == "test"]
    (file,) = [f for _, f in LocalS3(workdir / "s3").objects(test) if f.suffix == ".csv"]
    return pd.read_csv(io.StringIO(file.read_text()))


def _resource_config(ml: Path) -> dict[str, Any]:
    return json.loads((ml / "input" / "config" / "resourceconfig.json").read_text())


@slow
def test_two_workers_train_under_sagemakers_contract(
    runs: dict[int, tuple[runner.Run, Path]],
) -> None:
    run, _ = runs[2]
    assert [step(run, name).status for name in ("Prepare", "Train", "Evaluate")] == [
        "Succeeded"
    ] * 3
    train_dir = run.run_dir / "steps" / "Train"
    received: list[set[str]] = []
    for rank, host in enumerate(("algo-1", "algo-2")):
        ml = train_dir / host / "container" / "opt" / "ml"
        config = _resource_config(ml)
        assert (config["current_host"], config["hosts"]) == (host, ["algo-1", "algo-2"])
        data = ml / "input" / "data"
        received.append({p.name for p in (data / "train").rglob("*.csv")})
        assert [p.name for p in (data / "train_record").iterdir()] == ["training_data.json"]
        assert [p.name for p in (data / "validation").iterdir()] == ["validation.csv"]
        log = (train_dir / host / "log.txt").read_text()
        assert f"host {host} is worker {rank} of 2" in log
    # ShardedByS3Key: each host got its own shard, together all of them.
    assert received == [{"part-00000.csv"}, {"part-00001.csv"}]
    assert not any((train_dir / "algo-2" / "container" / "opt" / "ml" / "model").iterdir())


@slow
def test_two_workers_score_like_one(runs: dict[int, tuple[runner.Run, Path]]) -> None:
    test = _test_split(*runs[1])
    pd.testing.assert_frame_equal(test, _test_split(*runs[2]))
    target = load_config("dev").schema.target
    features = [c for c in test.columns if c != target and c in _model(*runs[1]).feature_names]
    matrix = xgb.DMatrix(test[features].to_numpy(np.float32), feature_names=features)
    one, two = (_model(*runs[w]).predict(matrix) for w in (1, 2))
    y = test[target].to_numpy()
    assert abs(roc_auc_score(y, two) - roc_auc_score(y, one)) <= 0.01
    assert abs(log_loss(y, two) - log_loss(y, one)) <= 0.05 * log_loss(y, one)
    assert float(np.mean(np.abs(two - one))) <= 0.01


def test_the_workers_flag_reaches_the_generated_definition() -> None:
    """`make local-run WORKERS=2` -> `--workers 2` -> the definition the run executes has two
    training instances fed ShardedByS3Key (what the distributed tests above run)."""
    args = cli.parse_args(["run", "--workers", "2"])
    source, notes = cli._source(args, load_config(args.env))
    assert notes == [] and source.pipeline_name == load_config(args.env).pipeline_name
    (train,) = [s for s in json.loads(source.file.read_text())["Steps"] if s["Name"] == "Train"]
    assert train["Arguments"]["ResourceConfig"]["InstanceCount"] == 2
    channels = {c["ChannelName"]: c for c in train["Arguments"]["InputDataConfig"]}
    distribution = channels["train"]["DataSource"]["S3DataSource"]["S3DataDistributionType"]
    assert distribution == "ShardedByS3Key"


def test_workers_out_of_range_or_with_a_definition_file_are_refused(tmp_path: Path) -> None:
    for bad in ("0", "11"):
        args = cli.parse_args(["run", "--workers", bad])
        with pytest.raises(LocalPipelineError, match=f"--workers {bad} is not allowed: 1 to 10"):
            cli.run(args)
    file = tmp_path / "training.json"
    file.write_text("{}")
    args = cli.parse_args(["run", "--workers", "2", "--definition", str(file)])
    with pytest.raises(LocalPipelineError, match="--workers works with the generated definition"):
        cli.run(args)


def test_sharded_channels_deal_the_objects_out_by_key_and_replicated_ones_do_not() -> None:
    objects = [(f"part-{i:05d}.csv", Path(f"/b/part-{i:05d}.csv")) for i in range(5)]
    dealt = [
        [name for name, _ in training_hosts.objects_for_host(objects, "ShardedByS3Key", r, 2)]
        for r in range(2)
    ]
    assert dealt == [
        ["part-00000.csv", "part-00002.csv", "part-00004.csv"],
        ["part-00001.csv", "part-00003.csv"],
    ]
    assert training_hosts.objects_for_host(objects, "FullyReplicated", 1, 2) == objects
    # More hosts than objects: a host gets no data (train.py joins it with no rows).
    assert training_hosts.objects_for_host(objects[:1], "ShardedByS3Key", 1, 2) == []


def test_each_host_gets_the_resource_config_sagemaker_writes_for_it() -> None:
    hosts = training_hosts.host_names(3)
    assert hosts == ["algo-1", "algo-2", "algo-3"]
    config = training_hosts.resource_config("algo-2", hosts, "ml.m5.xlarge")
    assert (config["current_host"], config["hosts"]) == ("algo-2", hosts)
    assert config["instance_groups"][0]["hosts"] == hosts
    assert config["network_interface_name"] == "eth0"


def _hosts_with_models(root: Path, files: dict[str, list[str]]) -> list[container.Sandbox]:
    sandboxes = []
    for host, names in files.items():
        sandbox = container.Sandbox(root / host)
        for name in names:
            path = sandbox.host_path(f"/opt/ml/model/{name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{host}:{name}")
        sandbox.host_path("/opt/ml/model").mkdir(parents=True, exist_ok=True)
        sandboxes.append(sandbox)
    return sandboxes


def test_the_job_model_is_every_hosts_model_folder_merged(tmp_path: Path) -> None:
    """SageMaker uploads one model artifact for the job: what every host wrote to
    /opt/ml/model, not only algo-1's."""
    files = {"algo-1": ["xgboost-model", "metadata/model-metadata.json"], "algo-2": ["extra.txt"]}
    sandboxes = _hosts_with_models(tmp_path, files)
    merged = training._merged_model("Train", list(files), sandboxes, tmp_path / "merged")
    found = {
        p.relative_to(merged).as_posix(): p.read_text() for p in merged.rglob("*") if p.is_file()
    }
    assert found == {
        "xgboost-model": "algo-1:xgboost-model",
        "metadata/model-metadata.json": "algo-1:metadata/model-metadata.json",
        "extra.txt": "algo-2:extra.txt",
    }


def test_a_model_file_two_hosts_wrote_fails_the_job_naming_it(tmp_path: Path) -> None:
    files = {"algo-1": ["xgboost-model"], "algo-2": ["xgboost-model"]}
    sandboxes = _hosts_with_models(tmp_path, files)
    with pytest.raises(
        StepError,
        match="hosts algo-1 and algo-2 both wrote /opt/ml/model/xgboost-model",
    ):
        training._merged_model("Train", list(files), sandboxes, tmp_path / "merged")
