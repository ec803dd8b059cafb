"""Evaluate across processing instances, with the step scripts on real-shaped data: the test
split cut into one file per instance (`split_test_files`, as the sharded Prepare writes it),
EvaluateShards on three hosts (each its files dealt out by key as ShardedByS3Key deals them,
one host none), then Evaluate reading their predictions: evaluation.json is byte for byte the
one Evaluate writes on one instance from test.csv, for binary (category features, text
labels), multi-class and regression XGBoost models, a scikit-learn model and the custom
trainer example's, with and without a champion. Predictions of another model or of other
rows are refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline_code import penguin_data
from pipeline_code.definition.contract import TEST_FILES_PREFIX
from pipeline_code.steps import load
from tests.steps.test_train_sklearn import _archive

prepare = load("prepare")
train = load("train")
train_sklearn = load("train_sklearn")
evaluate = load("evaluate")
split_test_files = load("prepare", "split_test_files")
shard_predictions = load("evaluate", "shard_predictions")

HOSTS = 3
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
CASES = {
    # name: (problem, target, category features, metric, trainer)
    "binary": ("binary", "sex", ["species", "island"], "auc", "xgboost"),
    "multiclass": ("multiclass", "species", ["island"], "accuracy", "xgboost"),
    "regression": ("regression", "body_mass_g", ["species"], "rmse", "xgboost"),
    "sklearn": ("binary", "sex", ["species"], "auc", "sklearn"),
    "custom": ("binary", "sex", [], "auc", "custom"),  # examples/custom_trainer
}
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_trainer" / "train.py"
FAST = ["--num_round", "25", "--early_stopping_rounds", "5", "--max_depth", "3"]


def _schema(problem: str, target: str, categories: list[str]) -> str:
    features = [{"name": n, "type": "category"} for n in categories]
    features += [{"name": n, "type": "float"} for n in NUMBERS]
    positive = {"positive_class": "female"} if problem == "binary" else {}
    return json.dumps(
        {
            "target": target,
            "problem_type": problem,
            "max_missing_fraction": 0.05,
            **positive,
            "features": features,
        }  # fmt: skip
    )


def _train(name: str, base: Path, model: str, worse: bool) -> Path:
    problem, target, *_, trainer = CASES[name]
    data, out = base / "data", base / f"raw-{model}"
    common = ["--target", target, "--train", str(data / "train"), "--validation",
              str(data / "validation"), "--model_dir", str(out)]  # fmt: skip
    if trainer == "custom":  # run as the training job runs it: its own process, SM_* paths
        environment = {**os.environ, "SM_CHANNEL_TRAIN": str(data / "train"),
                       "SM_CHANNEL_VALIDATION": str(data / "validation"),
                       "SM_MODEL_DIR": str(out)}  # fmt: skip
        rounds = "2" if worse else "30"
        done = subprocess.run([sys.executable, str(EXAMPLE), "--target", target, "--seed", "42",
                               "--num_round", rounds], env=environment, cwd=base,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
    elif trainer == "sklearn":
        iterations = 5 if worse else 40
        estimator = "sklearn.ensemble.HistGradientBoostingClassifier"
        assert train_sklearn.main([*common, "--estimator", estimator, "--estimator_params",
                                   json.dumps({"max_iter": iterations})]) == 0  # fmt: skip
    else:
        extra = ["--num_round", "2", "--max_depth", "1"] if worse else []
        assert (
            train.main([*FAST, *extra, *common, "--checkpoint_dir", str(base / f"ck-{model}")]) == 0
        )
    return _archive(out, base / model)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluate-shards")
    (root / "in").mkdir()
    frame = penguin_data.generate(2400, seed=17).dropna(subset=["sex"])
    frame.to_csv(root / "in" / "penguins.csv", index=False)
    out = {}
    for name, (problem, target, categories, *_) in CASES.items():
        base = root / name
        assert prepare.main(["--input-dir", str(root / "in"), "--output-dir", str(base / "data"),
                             "--schema", _schema(problem, target, categories)]) == 0  # fmt: skip
        _train(name, base, "challenger", worse=False)
        _train(name, base, "champion", worse=True)
        out[name] = base
    return out


def _arguments(name: str, base: Path, test_dir: Path, output: Path, champion: bool) -> list[str]:
    problem, target, _, metric, trainer = CASES[name]
    return ["--model-dir", str(base / "challenger"), "--test-dir", str(test_dir),
            "--output-dir", str(output), "--target", target, "--metric", metric,
            "--trainer", trainer, "--bootstrap-samples", "200", "--min-positives", "20",
            "--floor", "0.5" if problem != "regression" else "5000",
            *(["--champion-model-dir", str(base / "champion")] if champion else [])]  # fmt: skip


def _sharded_test_split(base: Path, root: Path) -> tuple[Path, list[Path]]:
    """The test split as the sharded Prepare writes it, and each host's ShardedByS3Key share
    of the objects below the test files' key prefix (`<test>/test`: not labels.json), sorted
    by key and dealt out in turn."""
    test_dir = root / "test"
    shutil.copytree(base / "data" / "test", test_dir)
    rows = sum(1 for _ in (test_dir / "test.csv").open()) - 1
    files = split_test_files.split_test_file(test_dir / "test.csv", rows, HOSTS - 1)
    assert [f.name for f in files] == ["test-00000.csv", "test-00001.csv"]
    objects = sorted(p for p in test_dir.iterdir() if p.name.startswith(TEST_FILES_PREFIX))
    hosts = []
    for host in range(HOSTS):
        own = root / f"algo-{host + 1}" / "test"
        own.mkdir(parents=True)
        for item in objects[host::HOSTS]:
            shutil.copy(item, own / item.name)
        hosts.append(own)
    return test_dir, hosts


def _sharded_run(name: str, base: Path, root: Path, champion: bool) -> Path:
    test_dir, hosts = _sharded_test_split(base, root)
    predictions = root / "predictions"
    for host_test in hosts:
        argv = _arguments(name, base, host_test, root / "unused", champion)
        assert evaluate.main([*argv, "--predictions-output", str(predictions)]) == 0
    assert not (root / "unused").exists()  # the predict step writes no report
    # two test files predicted; the host that received none says so (an upload is never empty)
    written = sorted(p.name for p in predictions.iterdir())
    assert written == [shard_predictions.EMPTY, *(f"test-0000{n}.csv.predictions.parquet"
                                                   for n in range(2))]  # fmt: skip
    assert "nothing to predict" in (predictions / shard_predictions.EMPTY).read_text()
    output = root / "evaluation"
    argv = _arguments(name, base, test_dir, output, champion)
    assert evaluate.main([*argv, "--predictions-dir", str(predictions)]) == 0
    return output


@pytest.mark.parametrize("champion", [False, True], ids=["no-champion", "champion"])
@pytest.mark.parametrize("name", list(CASES))
def test_evaluation_json_is_byte_identical_across_processing_instances(
    prepared: dict[str, Path], tmp_path: Path, name: str, champion: bool
) -> None:
    base = prepared[name]
    single = tmp_path / "single"
    assert evaluate.main(_arguments(name, base, base / "data" / "test", single, champion)) == 0
    sharded = _sharded_run(name, base, tmp_path / "sharded", champion)
    one = (single / "evaluation.json").read_bytes()
    assert (sharded / "evaluation.json").read_bytes() == one
    report = json.loads(one)
    assert report["gate"]["has_champion"] is champion
    # the champion was compared, on the shards' predictions (the example's models record no
    # split rule, so Evaluate cannot know their training rows and compares none)
    if champion and name != "custom":
        assert report["gate"]["champion"] is not None


def test_predictions_of_another_model_are_refused(
    prepared: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = prepared["binary"]
    _sharded_run("binary", base, tmp_path / "sharded", False)
    # Evaluate asked to compare the champion as challenger: the predictions are of another model.
    argv = _arguments("binary", base, tmp_path / "sharded" / "test", tmp_path / "other", False)
    argv[1] = str(base / "champion")
    predictions = tmp_path / "sharded" / "predictions"
    assert evaluate.main([*argv, "--predictions-dir", str(predictions)]) == 1
    assert "they are of another model" in capsys.readouterr().err


def test_predictions_of_other_rows_or_missing_ones_are_refused(
    prepared: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = prepared["binary"]
    root = tmp_path / "sharded"
    _sharded_run("binary", base, root, False)
    predictions = root / "predictions"
    first = predictions / "test-00000.csv.predictions.parquet"
    table = pq.read_table(first)
    labels = table.column("label").to_numpy().copy()
    labels[0] = 1 - labels[0]
    pq.write_table(
        table.set_column(1, "label", [labels]).replace_schema_metadata(table.schema.metadata),
        first,
    )
    argv = _arguments("binary", base, root / "test", tmp_path / "out", False)
    assert evaluate.main([*argv, "--predictions-dir", str(predictions)]) == 1
    assert "the predictions are of other rows" in capsys.readouterr().err
    first.unlink()
    assert evaluate.main([*argv, "--predictions-dir", str(predictions)]) == 1
    assert "no test-00000.csv.predictions.parquet for the test file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "parts", "expected"), [(10, 3, [4, 3, 3]), (2, 3, [1, 1]), (9, 1, [9])]
)
def test_the_test_split_is_cut_into_even_parts_that_keep_the_row_order(
    tmp_path: Path, rows: int, parts: int, expected: list[int]
) -> None:
    path = tmp_path / "test.csv"
    lines = [f"{n},{n * 2}\n" for n in range(rows)]
    path.write_text("y,x\n" + "".join(lines))
    files = split_test_files.split_test_file(path, rows, parts)
    counts = [len(f.read_text().splitlines()) - 1 for f in files]
    assert counts == expected
    assert all(f.read_text().startswith("y,x\n") for f in files)
    assert "".join(f.read_text()[4:] for f in files) == "".join(lines)


def test_a_row_with_a_quoted_line_break_keeps_the_test_split_whole(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text('y,c\n1,"a\nb"\n0,x\n1,y\n')
    assert split_test_files.split_test_file(path, 3, 2) == [path]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.csv"]


def test_predictions_keep_their_scores_exactly(prepared: dict[str, Path], tmp_path: Path) -> None:
    """Multi-class scores are stored one column per class and read back bit for bit."""
    base = prepared["multiclass"]
    root = tmp_path / "sharded"
    _sharded_run("multiclass", base, root, True)
    table = pq.read_table(root / "predictions" / "test-00001.csv.predictions.parquet")
    assert {"challenger.0", "challenger.2", "champion.1"} <= set(table.column_names)
    scores = np.column_stack([table.column(f"challenger.{k}").to_numpy() for k in range(3)])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)


def test_a_model_is_known_by_its_content_not_where_it_is_mounted(
    prepared: dict[str, Path], tmp_path: Path
) -> None:
    """The local runner mounts each step's model at its own path (SageMaker at one):
    predictions must be accepted by content, an archive by its SHA-256, an unpacked
    booster by its bytes."""
    model_loading = load("evaluate", "model_loading")
    base = prepared["binary"]
    identities = []
    for model, where in (("challenger", "a"), ("challenger", "b"), ("champion", "a")):
        for kind, source in (("archive", base / model), ("raw", base / f"raw-{model}")):
            mounted = tmp_path / where / model / kind
            shutil.copytree(source, mounted)
            loaded = model_loading.load_model_dir(
                mounted,
                tmp_path / "scratch" / where / model / kind,
                "challenger",
                verified=True,
                trainer="xgboost",
            )
            identities.append(shard_predictions.identity(loaded))
    archive_a, raw_a, archive_b, raw_b, champion_archive, champion_raw = identities
    assert (archive_a, raw_a) == (archive_b, raw_b)
    assert len({archive_a, raw_a, champion_archive, champion_raw}) == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--predictions-dir", "p"],
            "--predictions-output and --predictions-dir: one or the other",
        ),
        (["--model-package-arn", "arn"], "not with --model-package-arn"),
    ],
)
def test_shard_flags_that_contradict_each_other_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["--predictions-output", str(tmp_path / "out"), "--test-dir", str(tmp_path), *extra]
    assert evaluate.main(argv) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "other"), [("binary", "regression"), ("regression", "binary")])
def test_a_champion_of_another_problem_type_is_judged_by_the_floor_alone_on_any_instances(
    prepared: dict[str, Path], tmp_path: Path, name: str, other: str
) -> None:
    """The shard writer and Evaluate leave it out by the same rule: a binary challenger's gate
    must not read a regression model's numbers as probabilities (nor the other way round)."""
    base = prepared[name]
    champion = ["--champion-model-dir", str(prepared[other] / "champion")]
    single = tmp_path / "single"
    argv = _arguments(name, base, base / "data" / "test", single, False)
    assert evaluate.main([*argv, *champion]) == 0
    root = tmp_path / "sharded"
    test_dir, hosts = _sharded_test_split(base, root)
    for host_test in hosts:
        argv = _arguments(name, base, host_test, root / "unused", False)
        assert evaluate.main([*argv, *champion, "--predictions-output", str(root / "p")]) == 0
    argv = _arguments(name, base, test_dir, root / "out", False)
    assert evaluate.main([*argv, *champion, "--predictions-dir", str(root / "p")]) == 0
    one = (single / "evaluation.json").read_bytes()
    assert (root / "out" / "evaluation.json").read_bytes() == one
    report = json.loads(one)
    gate = report["gate"]
    assert gate["champion"] is None and gate["delta"] is None
    skipped = gate["comparison"]["skipped"]
    assert skipped == f"the champion predicts {other}, the challenger {name}: not comparable"
    assert (
        report["lineage"]["champion_comparison"] == "floor only: champion of another problem type"
    )
    assert gate["decision"] in ("register", "reject")  # the floor decided
    for table in (root / "p").glob(f"*{shard_predictions.SUFFIX}"):
        assert b"champion" not in (pq.read_schema(table).metadata or {})


def test_predictions_scored_with_another_champion_are_refused_in_one_line(
    prepared: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """EvaluateShards ran with champion A; Evaluate is given champion B: refused, not mixed."""
    base = prepared["binary"]
    root = tmp_path / "sharded"
    _sharded_run("binary", base, root, True)
    argv = _arguments("binary", base, root / "test", tmp_path / "out", False)
    other = ["--champion-model-dir", str(base / "challenger")]  # a binary model, not A
    capsys.readouterr()
    predictions = ["--predictions-dir", str(root / "predictions")]
    assert evaluate.main([*argv, *other, *predictions]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "ERROR" in line or line]
    message = [line for line in errors if "hold no scores of this champion" in line]
    assert len(message) == 1 and "they are of another model" in message[0]
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_predictions_of_other_rows_with_the_same_labels_are_refused(
    prepared: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The labels alone cannot tell the rows apart: a feature changed in Evaluate's test file
    after EvaluateShards predicted it is caught by the file's SHA-256."""
    base = prepared["binary"]
    root = tmp_path / "sharded"
    _sharded_run("binary", base, root, False)
    first = root / "test" / "test-00000.csv"
    header, row, *rest = first.read_text().splitlines(keepends=True)
    column = header.rstrip("\n").split(",").index("bill_length_mm")
    cells = row.rstrip("\n").split(",")
    cells[column] = str(float(cells[column]) + 7.5)
    first.write_text(header + ",".join(cells) + "\n" + "".join(rest))
    argv = _arguments("binary", base, root / "test", tmp_path / "out", False)
    assert evaluate.main([*argv, "--predictions-dir", str(root / "predictions")]) == 1
    error = capsys.readouterr().err
    assert "test-00000.csv has SHA-256" in error and "the predictions are of other rows" in error
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_a_model_without_archive_or_booster_is_known_by_its_directory(tmp_path: Path) -> None:
    """No loader makes such a model today (a scikit-learn pickle needs its archive), but if one
    did, two of them must not share a null identity (each would accept the other's
    predictions); one directory mounted at two paths keeps one identity."""
    model_loading = load("evaluate", "model_loading")
    for where, content in (("a", b"model one"), ("b", b"model one"), ("c", b"model two")):
        (tmp_path / where / "metadata").mkdir(parents=True)
        (tmp_path / where / "model.bin").write_bytes(content)
        (tmp_path / where / "metadata" / "model-metadata.json").write_text("{}")
    identities = [
        shard_predictions.identity(model_loading.LoadedModel(None, None, str(tmp_path / w)))
        for w in "abc"
    ]
    assert identities[0] == identities[1] != identities[2]
    assert json.loads(identities[0])[0].startswith("directory:")
    with pytest.raises(model_loading.EvaluationError, match="no identity to match"):
        shard_predictions.identity(model_loading.LoadedModel(None, None, "registry-package"))
