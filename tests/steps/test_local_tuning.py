"""`make local-run TUNE=N`: a seeded random search over the tuning ranges on the bundled data,
a table of the trials, and the normal run (train, evaluate, gate) with the best one."""

from __future__ import annotations

import copy
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest

from mlops_config import parse_environment, read_cdk_json_context
from mlops_config.tuning import SearchRange
from pipeline_code import local_run, local_tuning
from pipeline_code.local_settings import LocalRunError

ROWS = "3000"
PENGUINS = Path(__file__).resolve().parents[2] / "examples" / "penguins.csv"


def _with_tuning(monkeypatch: pytest.MonkeyPatch, environment: str, tuning: Any) -> list[str]:
    """cdk.json as it is, with `tuning` as `environment`'s pipeline.tuning (None: no block);
    the environments the search loaded."""
    context = copy.deepcopy(read_cdk_json_context())
    block = context["environments"][environment].setdefault("pipeline", {})
    block.pop("tuning", None)
    if tuning is not None:
        block["tuning"] = tuning
    loaded: list[str] = []

    def load(env: str) -> Any:
        loaded.append(env)
        return parse_environment(context, env)

    monkeypatch.setattr(local_tuning, "load_config", load)
    return loaded


def _metadata(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / "metadata" / "model-metadata.json").read_text())


def test_three_trials_on_the_bundled_data_then_the_best_is_trained_and_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_tuning(monkeypatch, "dev", None)  # the default ranges, whatever cdk.json says
    workdir = tmp_path / "w"
    code = local_run.main(
        ["--workdir", str(workdir), "--rows", ROWS, "--min-positives", "5", "--tune", "3"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "tuning: random search, 3 trials over eta, max_depth, min_child_weight, subsample" in out
    rows = [line for line in out.splitlines() if re.match(r"^\s+\d+\s", line)]
    assert len(rows) == 3 and sum("<- best" in row for row in rows) == 1
    trials = {n: _metadata(workdir / "tune" / f"trial-{n}" / "model") for n in (1, 2, 3)}
    aucs = {n: m["best_validation_auc"] for n, m in trials.items()}
    best = max(aucs, key=lambda n: (aucs[n], -n))
    assert f"best: trial {best}, validation:auc {aucs[best]:.4f}" in out
    # each trial drew its own values, each within its range
    for n, metadata in trials.items():
        hp = metadata["hyperparameters"]
        assert 0.02 <= hp["eta"] <= 0.3 and 3 <= hp["max_depth"] <= 10, n
        assert 0.6 <= hp["subsample"] <= 1.0 and 1 <= hp["min_child_weight"] <= 10, n
    assert len({json.dumps(m["hyperparameters"], sort_keys=True) for m in trials.values()}) == 3
    # the run's model is trained with the best trial's values and evaluated as usual
    final = _metadata(workdir / "train" / "opt" / "ml" / "model")
    assert final["hyperparameters"] == trials[best]["hyperparameters"]
    assert final["best_validation_auc"] == pytest.approx(aucs[best])
    assert "gate: " in out
    record = json.loads((workdir / "tune" / local_tuning.TRIALS_FILE).read_text())
    assert record["best"] == best and record["search"] == "random"
    assert [t["objective"] for t in record["trials"]] == [aucs[n] for n in (1, 2, 3)]
    assert (record["objective_metric"], record["objective_type"]) == ("validation:auc", "Maximize")
    assert record["trials"][best - 1]["hyperparameters"] == {
        name: trials[best]["hyperparameters"][name]
        for name in record["trials"][0]["hyperparameters"]
    }
    assert (workdir / "evaluate" / "opt" / "ml" / "processing" / "model" / "model.tar.gz").exists()


def test_the_search_is_seeded_and_draws_within_the_ranges() -> None:
    ranges = {
        "eta": SearchRange(min=0.001, max=1.0, scaling="log"),
        "max_depth": SearchRange(min=2, max=4),
        "min_child_weight": SearchRange(min=1, max=100, scaling="log"),
        "subsample": SearchRange(values=(0.5, 0.7)),
        "num_round": SearchRange(values=(50, 100)),
    }
    draws = [
        {name: local_tuning.draw(name, r, rng) for name, r in ranges.items()}
        for rng in [random.Random(7)]
        for _ in range(400)
    ]
    assert all(0.001 <= d["eta"] <= 1.0 for d in draws)
    # log scaling: about as many draws below 0.0316 (the middle in log space) as above
    below = sum(d["eta"] < math.sqrt(0.001) for d in draws)
    assert 150 < below < 250
    assert {d["max_depth"] for d in draws} == {2, 3, 4}
    assert all(isinstance(d["max_depth"], int) for d in draws)
    assert {d["subsample"] for d in draws} == {0.5, 0.7}
    assert {d["num_round"] for d in draws} == {50, 100}
    assert all(isinstance(d["num_round"], int) for d in draws)
    again = [local_tuning.draw("eta", ranges["eta"], random.Random(7)) for _ in range(1)]
    assert again[0] == draws[0]["eta"]


def test_the_best_trial_is_the_highest_validation_auc(tmp_path: Path) -> None:
    scores = iter([0.8, 0.9, 0.9, 0.7])
    lines: list[str] = []
    best = local_tuning.random_search(
        4,
        {"eta": SearchRange(min=0.01, max=0.3)},
        lambda values, trial: next(scores),
        tmp_path,
        seed=1,
        log=lines.append,
    )
    assert best.number == 2 and best.objective == 0.9  # the first of equals
    [table] = lines
    header, *rows = table.splitlines()
    assert header.split() == ["trial", "eta", "validation:auc"]
    assert [row.endswith("<- best") for row in rows] == [False, True, False, False]


def test_a_negative_trial_count_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert local_run.main(["--workdir", str(tmp_path / "w"), "--tune", "-1"]) == 1
    assert capsys.readouterr().err.strip() == (
        "local run failed: --tune -1 is not allowed: 0 (off) or more trials"
    )


def test_the_environments_configured_ranges_are_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    tuning = {"ranges": {"eta": {"min": 0.05, "max": 0.2}}}
    loaded = _with_tuning(monkeypatch, "staging", tuning)
    ranges, origin = local_tuning.configured_ranges("staging")
    assert loaded == ["staging"]
    assert set(ranges) == {"eta"} and (ranges["eta"].min, ranges["eta"].max) == (0.05, 0.2)
    assert origin == "cdk.json pipeline.tuning.ranges (staging)"


def test_without_a_tuning_block_the_defaults_are_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_tuning(monkeypatch, "dev", None)
    ranges, origin = local_tuning.configured_ranges("dev")
    assert ranges == local_tuning.DEFAULT_RANGES
    assert origin == "default ranges (cdk.json sets no pipeline.tuning for dev)"


def test_a_bad_tuning_block_is_an_error_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # never a silent fall-back to the defaults with a log line saying cdk.json sets none
    _with_tuning(monkeypatch, "dev", {"ranges": {"eta": {"min": 0.01, "max": 3}}})
    with pytest.raises(LocalRunError) as raised:
        local_tuning.configured_ranges("dev")
    text = str(raised.value)
    assert text.startswith("cdk.json: environments.dev.pipeline.tuning.ranges.eta = 3"), text
    assert "\n" not in text


def test_the_run_passes_its_environment_to_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _with_tuning(monkeypatch, "prod", {"ranges": {"eta": {"min": 0.01, "max": 3}}})
    argv = ["--workdir", str(tmp_path / "w"), "--rows", ROWS, "--min-positives", "5"]
    assert local_run.main([*argv, "--tune", "2", "--env", "prod"]) == 1
    assert loaded == ["prod"]
    err = capsys.readouterr().err.strip()
    assert err.startswith("local run failed: cdk.json: environments.prod.pipeline.tuning."), err


def test_a_multiclass_search_ranks_the_trials_by_the_gate_metric_macro_f1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # penguins' species: multiclass, gate metric macro_f1 (cdk.json's auc is not multiclass),
    # reported once per trial in train.py's summary
    _with_tuning(monkeypatch, "dev", None)
    workdir = tmp_path / "w"
    argv = ["--workdir", str(workdir), "--data", str(PENGUINS), "--target", "species"]
    assert local_run.main([*argv, "--tune", "2", "--mlflow-store", str(tmp_path / "ml")]) == 0
    out = capsys.readouterr().out
    trials = {n: _metadata(workdir / "tune" / f"trial-{n}" / "model") for n in (1, 2)}
    scores = {n: m["best_validation_macro_f1"] for n, m in trials.items()}
    best = max(scores, key=lambda n: (scores[n], -n))
    assert f"best: trial {best}, validation:macro_f1 {scores[best]:.4f}" in out
    record = json.loads((workdir / "tune" / local_tuning.TRIALS_FILE).read_text())
    assert (record["objective_metric"], record["objective_type"]) == (
        "validation:macro_f1",
        "Maximize",
    )


def test_a_regression_search_keeps_the_lowest_validation_rmse_and_logs_each_trial_to_mlflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    _with_tuning(monkeypatch, "dev", None)
    workdir, store = tmp_path / "w", tmp_path / "mlruns"
    argv = ["--workdir", str(workdir), "--data", str(PENGUINS), "--target", "body_mass_g"]
    assert local_run.main([*argv, "--tune", "3", "--mlflow-store", str(store)]) == 0
    out = capsys.readouterr().out
    # gate metric r2 (higher is better) is ranked by the validation RMSE, lowest first
    trials = {n: _metadata(workdir / "tune" / f"trial-{n}" / "model") for n in (1, 2, 3)}
    rmse = {n: m["best_validation_rmse"] for n, m in trials.items()}
    best = min(rmse, key=lambda n: (rmse[n], n))
    assert f"best: trial {best}, validation:rmse {rmse[best]:.4f}" in out
    assert "with 3 trials as child runs in experiment local-run-scripts" in out
    reader = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = reader.get_experiment_by_name("local-run-scripts")
    assert experiment is not None
    parents = "tags.`mlops.tuning.best_training_job` LIKE 'trial-%'"  # children have none
    (parent,) = reader.search_runs([experiment.experiment_id], parents)
    assert parent.data.params["eta"] == str(trials[best]["hyperparameters"]["eta"])
    # the best trial's tuned values as `tuned.<name>`, as the cloud tracker logs them
    assert parent.data.params["tuned.eta"] == str(trials[best]["hyperparameters"]["eta"])
    children = reader.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    by_name = {run.info.run_name: run for run in children}
    assert sorted(by_name) == ["trial-1", "trial-2", "trial-3"]
    for n, metadata in trials.items():
        run = by_name[f"trial-{n}"]
        assert run.data.metrics["validation.rmse"] == pytest.approx(rmse[n])
        assert run.data.tags["mlops.best_trial"] == str(n == best).lower()
        assert float(run.data.params["eta"]) == pytest.approx(metadata["hyperparameters"]["eta"])


def test_a_store_that_cannot_be_written_leaves_the_finished_run_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_tuning(monkeypatch, "dev", None)
    workdir, store = tmp_path / "w", tmp_path / "mlruns"
    store.write_text("not a directory\n")  # a broken mlruns/: no store can be made under it
    argv = ["--workdir", str(workdir), "--data", str(PENGUINS), "--target", "body_mass_g"]
    assert local_run.main([*argv, "--tune", "2", "--mlflow-store", str(store)]) == 0
    captured = capsys.readouterr()
    # the run's result stands: the gate's decision, the outputs and every trial's model
    assert "\ngate: " in captured.out
    assert f"outputs: {workdir}" in captured.out
    for n in (1, 2):
        assert (workdir / "tune" / f"trial-{n}" / "model" / "xgboost-model").is_file()
    # one line says why the run is not in MLflow, and nothing else of it is lost
    (note,) = [line for line in captured.out.splitlines() if "MLflow" in line]
    assert note.startswith("note: the run was not logged to MLflow ("), note
    assert "Traceback" not in captured.out + captured.err
    assert store.read_text() == "not a directory\n"
