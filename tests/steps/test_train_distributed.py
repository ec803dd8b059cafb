"""Training across instances: the hosts from SageMaker's documented environment (SM_HOSTS and
SM_CURRENT_HOST as the training toolkit sets them, /opt/ml/input/config/resourceconfig.json as
SageMaker writes it), Prepare's train shards, and two train.py processes talking over loopback
that train one model as good as single-host training."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import log_loss, roc_auc_score

from pipeline_code.steps import STEPS_DIR, load
from tests.steps import FEATURES, SCHEMA_JSON, TARGET, small_frame, write

prepare = load("prepare")
cluster_module = load("train", "training_cluster")
channels = load("train", "channels")
shards_module = load("prepare", "train_shards")
TrainingError = channels.TrainingError

#: resourceconfig.json as the SageMaker developer guide documents it for a two-instance job.
RESOURCE_CONFIG = {
    "current_host": "algo-2",
    "current_instance_type": "ml.m5.xlarge",
    "current_group_name": "homogeneousCluster",
    "hosts": ["algo-1", "algo-2"],
    "instance_groups": [
        {
            "instance_group_name": "homogeneousCluster",
            "instance_type": "ml.m5.xlarge",
            "hosts": ["algo-2", "algo-1"],
        }
    ],
    "network_interface_name": "eth0",
}


def test_hosts_come_from_sm_hosts_and_the_first_sorted_host_is_the_master(tmp_path: Path) -> None:
    environ = {"SM_HOSTS": '["algo-2", "algo-1", "algo-3"]', "SM_CURRENT_HOST": "algo-1"}
    cluster = cluster_module.cluster_from_environment(environ, tmp_path / "absent.json")
    assert cluster.hosts == ("algo-1", "algo-2", "algo-3")
    assert (cluster.size, cluster.rank, cluster.master, cluster.is_master) == (3, 0, "algo-1", True)
    other = cluster_module.cluster_from_environment(
        {**environ, "SM_CURRENT_HOST": "algo-3"}, tmp_path / "absent.json"
    )
    assert (other.rank, other.is_master) == (2, False)


def test_without_sm_variables_the_resource_config_names_the_hosts(tmp_path: Path) -> None:
    path = tmp_path / "resourceconfig.json"
    path.write_text(json.dumps(RESOURCE_CONFIG))
    cluster = cluster_module.cluster_from_environment({}, path)
    assert (cluster.hosts, cluster.current_host, cluster.rank) == (
        ("algo-1", "algo-2"),
        "algo-2",
        1,
    )


def test_without_either_it_is_one_host(tmp_path: Path) -> None:
    cluster = cluster_module.cluster_from_environment({}, tmp_path / "absent.json")
    assert (cluster.size, cluster.is_master) == (1, True)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SM_HOSTS": '["algo-1"]'}, "SM_CURRENT_HOST is not set"),
        ({"SM_CURRENT_HOST": "algo-1"}, "SM_HOSTS is not set"),
        ({"SM_HOSTS": "algo-1,algo-2", "SM_CURRENT_HOST": "algo-1"}, "not a JSON list"),
        ({"SM_HOSTS": "[]", "SM_CURRENT_HOST": "algo-1"}, "non-empty list of host names"),
        ({"SM_HOSTS": '["algo-1", 2]', "SM_CURRENT_HOST": "algo-1"}, "non-empty list"),
        ({"SM_HOSTS": '["a", "a"]', "SM_CURRENT_HOST": "a"}, "names a host twice"),
        ({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-9"}, "'algo-9' is not one of"),
    ],
)
def test_a_bad_host_environment_fails_naming_the_variable(
    environ: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(TrainingError, match=message):
        cluster_module.cluster_from_environment(environ, tmp_path / "absent.json")


def test_a_bad_resource_config_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "resourceconfig.json"
    path.write_text("{not json")
    with pytest.raises(TrainingError, match="resourceconfig.json is not readable JSON"):
        cluster_module.cluster_from_environment({}, path)
    path.write_text(json.dumps({**RESOURCE_CONFIG, "current_host": "algo-7"}))
    with pytest.raises(TrainingError, match="resourceconfig.json current_host = 'algo-7'"):
        cluster_module.cluster_from_environment({}, path)


def test_the_tracker_port_is_the_containers_unless_overridden() -> None:
    assert cluster_module.tracker_port({}) == 9099
    assert cluster_module.tracker_port({"XGBOOST_TRACKER_PORT": "40001"}) == 40001
    for bad in ("0", "70000", "port"):
        with pytest.raises(TrainingError, match="XGBOOST_TRACKER_PORT"):
            cluster_module.tracker_port({"XGBOOST_TRACKER_PORT": bad})


def test_every_worker_asks_the_tracker_for_its_sorted_rank() -> None:
    cluster = cluster_module.Cluster(("algo-1", "algo-2"), "algo-2")
    assert cluster_module.worker_args(cluster, "10.0.0.5", 9099) == {
        "dmlc_tracker_uri": "10.0.0.5",
        "dmlc_tracker_port": 9099,
        "dmlc_task_id": "1",
        # Explicit: a firewall that drops packets fails the job in minutes, not after
        # XGBoost's far longer default.
        "dmlc_timeout": 300,
    }


def test_a_worker_that_cannot_join_gives_up_at_the_deadline_naming_the_security_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(range(0, 10_000, 100))
    monkeypatch.setattr(cluster_module.time, "monotonic", lambda: float(next(clock)))
    calls: list[dict[str, Any]] = []

    def refused(**args: Any) -> None:
        calls.append(args)
        raise xgb.core.XGBoostError("[18:53:58] comm.cc:220: Failed to bootstrap the group.")

    args = {"dmlc_tracker_uri": "10.0.0.5", "dmlc_tracker_port": 9099, "dmlc_task_id": "1"}
    with pytest.raises(TrainingError) as caught:
        cluster_module._join(args, 600, refused, lambda _: None)
    message = str(caught.value)
    assert "cannot join the tracker at 10.0.0.5:9099 after 6 attempts in 600 s" in message
    assert "Failed to bootstrap the group." in message
    assert "allow all traffic to and from the group itself" in message
    assert calls == [args] * 6


def test_several_gpu_instances_fail_clearly_until_tested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = load("train")
    monkeypatch.setenv("SM_HOSTS", '["algo-1", "algo-2"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-2")
    monkeypatch.setenv("SM_NUM_GPUS", "1")
    monkeypatch.setenv("FAILURE_REASON_FILE", str(tmp_path / "failure"))
    assert train.main([]) == 1
    assert (tmp_path / "failure").read_text() == (
        "training on 2 GPU instances is untested: use one GPU instance (TrainingInstanceCount 1) "
        "or CPU instances"
    )


def test_a_worker_joins_once_the_tracker_listens() -> None:
    answers: list[Exception | None] = [xgb.core.XGBoostError("refused"), None]

    def init(**args: Any) -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    sleeps: list[float] = []
    cluster_module._join({"dmlc_tracker_uri": "a", "dmlc_tracker_port": 1}, 60, init, sleeps.append)
    assert (answers, sleeps) == ([], [1.0])


class _Collective:
    """The master's side of the collective, recorded: the tracker and the XGBoost calls whose
    failures must not hide the job's own (each raises XGBoostError when told to)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failing: set[str]) -> None:
        self.events: list[str] = []
        test = self

        def call(name: str) -> Any:
            def record(*_: Any, **__: Any) -> None:
                test.events.append(name)
                if name in failing:
                    raise xgb.core.XGBoostError(f"[19:00:00] tracker.cc:296: {name} went wrong")

            return record

        class Tracker:
            def __init__(self, **_: Any) -> None:
                test.events.append("tracker")

            start = call("start")
            wait_for = call("wait_for")
            free = call("free")

        monkeypatch.setattr(cluster_module, "RabitTracker", Tracker)
        monkeypatch.setattr(cluster_module, "_join", call("join"))
        for name in ("signal_error", "finalize"):
            monkeypatch.setattr(cluster_module.collective, name, call(name))


def _master_environment(tmp_path: Path) -> dict[str, str]:
    config = _input_data_config(tmp_path / "config", "ShardedByS3Key")
    return {"SM_INPUT_CONFIG_DIR": str(config), "XGBOOST_TRACKER_PORT": "40001"}


MASTER = cluster_module.Cluster(("127.0.0.1", "localhost"), "127.0.0.1")


def test_a_failed_hosts_reason_survives_the_collectives_shutdown_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _Collective(monkeypatch, failing={"signal_error", "finalize", "free"})
    with (
        pytest.raises(TrainingError, match="^channel 'train' has no rows$"),
        cluster_module.communicator(MASTER, _master_environment(tmp_path)),
    ):
        raise TrainingError("channel 'train' has no rows")
    # The others are told, the collective left, the tracker stopped: no wait for a shutdown.
    assert fake.events == ["tracker", "start", "join", "signal_error", "finalize", "free"]


def test_a_tracker_slow_to_shut_down_after_the_model_is_written_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = _Collective(monkeypatch, failing={"wait_for"})
    with (
        caplog.at_level(logging.WARNING, logger="train"),
        cluster_module.communicator(MASTER, _master_environment(tmp_path)),
    ):
        fake.events.append("trained")
    assert fake.events == ["tracker", "start", "join", "trained", "finalize", "wait_for", "free"]
    assert "could not wait for the tracker to shut down: wait_for went wrong" in caplog.text


def _input_data_config(folder: Path, train_distribution: str | None) -> Path:
    """inputdataconfig.json as the SageMaker developer guide documents it."""
    train: dict[str, str] = {"TrainingInputMode": "File", "RecordWrapperType": "None"}
    if train_distribution is not None:
        train["S3DistributionType"] = train_distribution
    validation = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inputdataconfig.json").write_text(
        json.dumps({"train": train, "validation": validation})
    )
    return folder


@pytest.mark.parametrize("distribution", ["FullyReplicated", None])
def test_several_hosts_refuse_a_train_channel_that_is_not_sharded(
    distribution: str | None, tmp_path: Path
) -> None:
    folder = _input_data_config(tmp_path, distribution)
    two = cluster_module.Cluster(("algo-1", "algo-2"), "algo-2")
    with pytest.raises(
        TrainingError,
        match=f"inputdataconfig.json train S3DistributionType = {distribution!r}: training on "
        "2 instances needs the train channel ShardedByS3Key",
    ):
        cluster_module.check_sharded(two, {"SM_INPUT_CONFIG_DIR": str(folder)})
    # One host trains on the whole channel, however it is distributed.
    one = cluster_module.Cluster(("algo-1",), "algo-1")
    cluster_module.check_sharded(one, {"SM_INPUT_CONFIG_DIR": str(folder)})
    sharded = _input_data_config(tmp_path / "sharded", "ShardedByS3Key")
    cluster_module.check_sharded(two, {"SM_INPUT_CONFIG_DIR": str(sharded)})


def test_several_hosts_without_a_readable_input_data_config_fail_naming_it(tmp_path: Path) -> None:
    two = cluster_module.Cluster(("algo-1", "algo-2"), "algo-1")
    with pytest.raises(TrainingError, match="inputdataconfig.json is not readable JSON"):
        cluster_module.check_sharded(two, {"SM_INPUT_CONFIG_DIR": str(tmp_path)})


def test_a_host_name_is_retried_until_it_resolves_then_fails_clearly() -> None:
    answers: list[Any] = [OSError("not yet"), OSError("not yet"), "10.0.0.5"]

    def lookup(host: str) -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    sleeps: list[float] = []
    assert cluster_module.resolve("algo-1", 60, lookup, sleeps.append) == "10.0.0.5"
    assert len(sleeps) == 2

    def never(host: str) -> str:
        raise OSError("Name or service not known")

    with pytest.raises(TrainingError, match="host 'algo-1' does not resolve after 0 s"):
        cluster_module.resolve("algo-1", 0, never, lambda _: None)


# --- Prepare's shards --------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same 4,000 rows prepared whole (one/) and as two train shards (two/)."""
    root = tmp_path_factory.mktemp("prepared")
    write(small_frame(4000), root / "in" / "data.csv")
    for name, extra in (("one", []), ("two", ["--train-shards", "2"])):
        arguments = ["--input-dir", str(root / "in"), "--output-dir", str(root / name)]
        assert prepare.main([*arguments, "--schema", SCHEMA_JSON, *extra]) == 0
    return root


def test_the_shards_hold_exactly_the_train_split_dealt_out_in_turn(prepared: Path) -> None:
    whole = pd.read_csv(prepared / "one" / "train" / "train.csv")
    shard_dir = prepared / "two" / "train" / "shards"
    assert sorted(p.name for p in shard_dir.iterdir()) == ["part-00000.csv", "part-00001.csv"]
    assert not (prepared / "two" / "train" / "train.csv").exists()
    parts = [pd.read_csv(shard_dir / name) for name in ("part-00000.csv", "part-00001.csv")]
    pd.testing.assert_frame_equal(parts[0], whole.iloc[0::2].reset_index(drop=True))
    pd.testing.assert_frame_equal(parts[1], whole.iloc[1::2].reset_index(drop=True))
    report = json.loads((prepared / "two" / "report" / "split_report.json").read_text())
    assert report["train_shards"] == [len(parts[0]), len(parts[1])]
    # The record Train copies into the model stays beside the shards, the same as unsharded.
    assert (prepared / "two" / "train" / "training_data.json").read_text() == (
        prepared / "one" / "train" / "training_data.json"
    ).read_text()


def test_one_shard_writes_what_prepare_always_wrote(prepared: Path, tmp_path: Path) -> None:
    arguments = ["--input-dir", str(prepared / "in"), "--output-dir", str(tmp_path)]
    assert prepare.main([*arguments, "--schema", SCHEMA_JSON, "--train-shards", "1"]) == 0
    for path in (prepared / "one").rglob("*"):
        if path.is_file():
            assert (tmp_path / path.relative_to(prepared / "one")).read_bytes() == (
                path.read_bytes()
            ), path


def test_more_shards_than_train_rows_or_a_bad_count_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(shards_module.ShardingError, match="has 3 rows, fewer than the 4 shards"):
        shards_module.shard_rows(np.arange(3), 4)
    write(small_frame(400), tmp_path / "in" / "data.csv")
    failure = tmp_path / "failure"
    monkeypatch.setenv("FAILURE_REASON_FILE", str(failure))
    arguments = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    assert prepare.main([*arguments, "--schema", SCHEMA_JSON, "--train-shards", "0"]) == 1
    assert "--train-shards 0: expected 1 to 1000" in failure.read_text()
    assert not (tmp_path / "out").exists(), "nothing is written before the count is checked"


# --- two workers over loopback -------------------------------------------------------------

#: Deterministic boosting (no row or column sampling), so the only differences between one and
#: two workers are the merged quantile sketches: the model must match within this tolerance.
DETERMINISTIC = ["--subsample", "1", "--colsample_bytree", "1"]
FAST = ["--num_round", "40", "--early_stopping_rounds", "5", "--max_depth", "3"]
AUC_TOLERANCE = 0.01
PROBABILITY_TOLERANCE = 0.01
LOGLOSS_RELATIVE_TOLERANCE = 0.05


def _code_dir(root: Path) -> Path:
    """The train step as SageMaker receives it: its folder with `common/` inside."""
    code = root / "code"
    shutil.copytree(STEPS_DIR / "train", code, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(STEPS_DIR / "common", code / "common", ignore=shutil.ignore_patterns("__py*"))
    return code


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(**variables: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "SM_"))}
    return keep | {"OMP_WAIT_POLICY": "PASSIVE", **variables}


def _scores(model_dir: Path, test: pd.DataFrame) -> np.ndarray:
    booster = xgb.Booster(model_file=str(model_dir / "xgboost-model"))
    return booster.predict(xgb.DMatrix(test[FEATURES].to_numpy(np.float32), feature_names=FEATURES))


def _two_workers(
    prepared: Path, work: Path, code: Path, *arguments: str, succeed: bool = True
) -> list[str]:
    """Run train.py as two hosts over loopback, each with its shard (as ShardedByS3Key gives
    it), the whole validation split and the record; returns both logs (both must succeed
    unless `succeed` is False)."""
    # Host names that resolve on any machine; sorted, "127.0.0.1" is the master.
    hosts = ["localhost", "127.0.0.1"]
    port = str(_free_port())
    workers = []
    for rank, host in enumerate(sorted(hosts)):
        channel = work / f"train-{rank}"
        if not channel.exists():
            channel.mkdir()
            shutil.copy(prepared / "two" / "train" / "shards" / f"part-{rank:05d}.csv", channel)
        env = _env(
            SM_HOSTS=json.dumps(hosts),
            SM_CURRENT_HOST=host,
            XGBOOST_TRACKER_PORT=port,
            SM_CHANNEL_TRAIN=str(channel),
            SM_CHANNEL_VALIDATION=str(prepared / "two" / "validation"),
            SM_CHANNEL_TRAIN_RECORD=str(prepared / "two" / "train"),
            SM_MODEL_DIR=str(work / f"model-{rank}"),
            FAILURE_REASON_FILE=str(work / f"failure-{rank}"),
            SM_INPUT_CONFIG_DIR=str(_input_data_config(work / "config", "ShardedByS3Key")),
        )
        workers.append(
            subprocess.Popen(
                [sys.executable, str(code / "train.py"), *arguments]
                + ["--checkpoint_dir", str(work / f"ck-{rank}")],
                cwd=code,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = [worker.communicate(timeout=300)[0] for worker in workers]
    if succeed:
        assert [worker.returncode for worker in workers] == [0, 0], "\n".join(logs)[-3000:]
    return logs


@pytest.mark.slow
def test_two_workers_over_loopback_train_one_model_as_good_as_one_worker(
    prepared: Path, tmp_path: Path
) -> None:
    code = _code_dir(tmp_path)
    _two_workers(prepared, tmp_path, code, *FAST, *DETERMINISTIC)
    single = subprocess.run(
        [sys.executable, str(code / "train.py"), *FAST, *DETERMINISTIC]
        + ["--checkpoint_dir", str(tmp_path / "ck-single")],
        cwd=code,
        env=_env(
            SM_CHANNEL_TRAIN=str(prepared / "one" / "train"),
            SM_CHANNEL_VALIDATION=str(prepared / "one" / "validation"),
            SM_MODEL_DIR=str(tmp_path / "model-single"),
            FAILURE_REASON_FILE=str(tmp_path / "failure-single"),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]

    # Only the master writes the model and the checkpoints.
    assert not any((tmp_path / "model-1").rglob("*"))
    assert not (tmp_path / "ck-1").exists() or not any((tmp_path / "ck-1").iterdir())
    assert any((tmp_path / "ck-0").iterdir())
    metadata = json.loads((tmp_path / "model-0" / "metadata" / "model-metadata.json").read_text())
    whole_rows = len(pd.read_csv(prepared / "one" / "train" / "train.csv"))
    assert metadata["train_rows"] == whole_rows, "the class counts are summed over the hosts"
    assert metadata["training_data"]["splits"]["train"]["rows"] == whole_rows

    test = pd.read_csv(prepared / "one" / "test" / "test.csv")
    two, one = _scores(tmp_path / "model-0", test), _scores(tmp_path / "model-single", test)
    auc = roc_auc_score(test[TARGET], two), roc_auc_score(test[TARGET], one)
    loss = log_loss(test[TARGET], two), log_loss(test[TARGET], one)
    # Measured: AUC 0.899 vs 0.904 (593 test rows, 24 positives), log loss 0.0986 vs 0.0980,
    # mean probability difference 0.004.
    assert float(np.mean(np.abs(two - one))) <= PROBABILITY_TOLERANCE
    assert abs(auc[0] - auc[1]) <= AUC_TOLERANCE, auc
    assert abs(loss[0] - loss[1]) <= LOGLOSS_RELATIVE_TOLERANCE * loss[1], loss


@pytest.mark.slow
def test_a_restarted_job_resumes_every_host_from_the_masters_checkpoint(
    prepared: Path, tmp_path: Path
) -> None:
    """Managed spot: the job is interrupted after 20 rounds and restarted with the checkpoint
    prefix; only the master's folder holds checkpoints (the other host's is empty, as if its
    copy were missing), and both hosts continue from round 20 together."""
    code = _code_dir(tmp_path)
    common = ["--max_depth", "3", "--early_stopping_rounds", "50", "--checkpoint_every", "10"]
    _two_workers(prepared, tmp_path, code, "--num_round", "20", *common)
    assert sorted(p.name for p in (tmp_path / "ck-0").iterdir())[-1] == "xgboost-checkpoint.000020"
    assert not (tmp_path / "ck-1").exists() or not any((tmp_path / "ck-1").iterdir())
    shutil.rmtree(tmp_path / "model-0")
    logs = _two_workers(prepared, tmp_path, code, "--num_round", "30", *common)
    metadata = json.loads((tmp_path / "model-0" / "metadata" / "model-metadata.json").read_text())
    assert (metadata["resumed_from_round"], metadata["rounds_trained"]) == (20, 30)
    # The other host had no checkpoint of its own: it resumed from the master's broadcast.
    assert "resuming from the checkpoint after round 20" in logs[1]
    assert "worker 1 of 2 done after 30 rounds" in logs[1]


@pytest.mark.slow
def test_when_one_host_fails_every_host_fails_and_says_why(prepared: Path, tmp_path: Path) -> None:
    """The second host's shard is broken: that host fails naming its channel, and the master,
    left alone mid-exchange, fails pointing at it instead of hanging until
    MaxRuntimeInSeconds."""
    code = _code_dir(tmp_path)
    (tmp_path / "train-1").mkdir()
    (tmp_path / "train-1" / "part-00001.csv").write_text(f"{TARGET},{FEATURES[0]}\n2,1\n")
    _two_workers(prepared, tmp_path, code, *FAST, succeed=False)
    assert f"target '{TARGET}' must be 0 or 1" in (tmp_path / "failure-1").read_text()
    master = (tmp_path / "failure-0").read_text()
    assert "host 127.0.0.1 (1 of 2): the hosts stopped exchanging" in master
    assert "if another host failed first, its failure reason is the cause" in master
    assert not (tmp_path / "model-0").exists() or not any((tmp_path / "model-0").iterdir())


@pytest.mark.slow
def test_when_the_master_fails_first_its_failure_names_the_real_reason(
    prepared: Path, tmp_path: Path
) -> None:
    """The master fails before the first exchange (its shard is missing): shutting the tracker
    down early must not replace that reason with XGBoost's shutdown errors, and the worker,
    left without a tracker, fails too instead of waiting."""
    code = _code_dir(tmp_path)
    (tmp_path / "train-0").mkdir()
    # The master's shard lacks the target column.
    (tmp_path / "train-0" / "part-00000.csv").write_text(
        ",".join(FEATURES) + "\n" + "1," * (len(FEATURES) - 1) + "1\n"
    )
    logs = _two_workers(prepared, tmp_path, code, *FAST, succeed=False)
    master = (tmp_path / "failure-0").read_text()
    assert f"channel 'train': no target column '{TARGET}'" in master, logs[0][-2000:]
    assert "XGBoost error" not in master
    worker = (tmp_path / "failure-1").read_text()
    assert "the hosts stopped exchanging" in worker, logs[1][-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("empty", [1, 0])
def test_a_host_that_sharding_gave_no_files_joins_with_no_rows(
    prepared: Path, tmp_path: Path, empty: int
) -> None:
    """ShardedByS3Key gives each host about 1/n of the objects, so a host may get none (the
    worker or the master): it trains with the others on no rows of its own instead of failing
    the job."""
    code = _code_dir(tmp_path)
    (tmp_path / f"train-{empty}").mkdir()  # this host's shard never arrives
    logs = _two_workers(prepared, tmp_path, code, *FAST)
    metadata = json.loads((tmp_path / "model-0" / "metadata" / "model-metadata.json").read_text())
    shard = pd.read_csv(prepared / "two" / "train" / "shards" / f"part-{1 - empty:05d}.csv")
    assert metadata["train_rows"] == len(shard)
    assert metadata["feature_names"] == FEATURES
    assert f"worker 1 of 2 done after {metadata['rounds_trained']} rounds" in logs[1]
