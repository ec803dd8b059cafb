"""examples/custom_trainer/train.py with category features, under the custom trainer's contract:
run as the training job runs it, from the code tree the definition publishes (the user's folder
with the loop's serving code in `mlops_loop/`), on channels the real Prepare wrote (category
values as text); scored by the real Evaluate under `--trainer custom`; served by the archive's
own `code/inference.py` as the XGBoost container runs it in script mode.

Expected values are computed independently: the encoding from the train split's CSV with the
csv module, the codes with pandas' Categorical, the predictions with xgboost directly, the AUC
with scikit-learn. Evaluate's refusals of a tampered archive go through `load_model_dir`, the
function Evaluate loads the challenger with.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from mlops_config.trainer import LOOP_FOLDER
from pipeline_code import offline, penguin_data
from pipeline_code.definition.setting_rules import SettingsError
from pipeline_code.definition.step_code import custom_category_trees
from pipeline_code.steps import STEPS_DIR, load
from tests.serving.test_category_serving import _import_user_module, invoke, respond
from tests.steps.test_train_sklearn import NUMBERS, _archive

prepare = load("prepare")
evaluate = load("evaluate")
model_loading = load("evaluate", "model_loading")
custom_serving = load("evaluate", "custom_serving")
#: Where Evaluate looks for the loop's inference.py by default (before the fixture below moves it).
SHIPPED_REFERENCES = custom_serving.REFERENCE_SCRIPTS
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_trainer"
CATEGORIES = ["species", "island"]
FEATURES = CATEGORIES + NUMBERS
SCHEMA = {
    "target": "sex",
    "positive_class": "female",
    "max_missing_fraction": 0.05,
    "features": [{"name": n, "type": "category"} for n in CATEGORIES]
    + [{"name": n, "type": "float"} for n in NUMBERS],
}


def _tree(uri: str, store: offline.CodeStore) -> Path:
    """The local folder of a code tree's placeholder S3 prefix (…/pipeline-code/<sha256>/)."""
    return store.root / uri.rstrip("/").rsplit("/", 1)[1]


def _train_example(root: Path, schema: dict[str, Any], target: str) -> Path:
    """Prepare on `root/in`, then the example run as the training job runs it, from the code
    tree the definition publishes; returns that tree (the model is in `root/model`, packed
    into `root/artifact/model.tar.gz`)."""
    assert prepare.main(["--input-dir", str(root / "in"), "--output-dir", str(root / "data"),
                         "--schema", json.dumps(schema)]) == 0  # fmt: skip
    store = offline.CodeStore(root / "code")
    folders = {step: STEPS_DIR / step for step in ("train", "evaluate")}
    custom_uri, _ = custom_category_trees(EXAMPLE, folders, STEPS_DIR, store)
    source = _tree(custom_uri, store)
    environment = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(root / "data" / "train"),
        "SM_CHANNEL_VALIDATION": str(root / "data" / "validation"),
        "SM_MODEL_DIR": str(root / "model"),
    }
    done = subprocess.run(
        [sys.executable, str(source / "train.py"), "--target", target, "--seed", "42",
         "--decision_threshold", "max-f1", "--num_round", "40"],
        env=environment, cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _archive(root / "model", root / "artifact")
    return source


@pytest.fixture(scope="module")
def evaluate_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Evaluate's code tree as the definition publishes it for custom + category features."""
    store = offline.CodeStore(tmp_path_factory.mktemp("evaluate-tree"))
    folders = {step: STEPS_DIR / step for step in ("train", "evaluate")}
    _, evaluate_uri = custom_category_trees(EXAMPLE, folders, STEPS_DIR, store)
    return _tree(evaluate_uri, store)


@pytest.fixture(autouse=True)
def _shipped_reference(evaluate_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's steps/evaluate has no train/ folder: Evaluate (loaded from there) checks
    against the inference.py of the code tree the definition publishes, as in the container."""
    reference = evaluate_tree / custom_serving.REFERENCE_DIR / "inference.py"
    monkeypatch.setattr(custom_serving, "REFERENCE_SCRIPTS", (reference,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("custom-categories")
    (root / "in").mkdir()
    penguin_data.generate(1500, seed=11).to_csv(root / "in" / "penguins.csv", index=False)
    return {"root": root, "source": _train_example(root, SCHEMA, "sex")}


def _independent(root: Path) -> tuple[dict[str, list[str]], pd.DataFrame, np.ndarray]:
    """(encoding from train.csv, the test split, the booster's probabilities on it), computed
    without the loop's code."""
    with (root / "data" / "train" / "train.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    encoding = {name: sorted({r[name] for r in rows if r[name] != ""}) for name in CATEGORIES}
    test = pd.read_csv(root / "data" / "test" / "test.csv", dtype={n: str for n in CATEGORIES})
    return encoding, test, _predict(root, test, encoding)


def _predict(
    root: Path,
    frame: pd.DataFrame,
    encoding: dict[str, list[str]],
    features: list[str] = FEATURES,
) -> np.ndarray:
    columns = []
    for name in features:
        if name in encoding:
            codes = pd.Categorical(frame[name], categories=encoding[name]).codes
            # Categorical's code of a value outside the categories is -1: missing
            columns.append(np.where(codes == -1, np.nan, codes).astype(np.float32))
        else:
            columns.append(frame[name].to_numpy(np.float32))
    booster = xgb.Booster(model_file=str(root / "model" / "xgboost-model"))
    types = ["c" if name in encoding else "q" for name in features]
    data = xgb.DMatrix(
        np.column_stack(columns), feature_names=features, feature_types=types,
        enable_categorical=True,
    )  # fmt: skip
    return booster.predict(data)


def test_the_archive_carries_the_train_splits_encoding_and_the_loops_serving_code(
    trained: dict[str, Any],
) -> None:
    root = trained["root"]
    encoding, _, _ = _independent(root)
    stored = json.loads((root / "model" / "metadata" / "categories.json").read_text())
    assert stored["features"] == encoding
    assert (root / "model" / "code" / "inference.py").read_bytes() == (
        STEPS_DIR / "train" / "inference.py"
    ).read_bytes()
    assert (root / "model" / "code" / "common" / "categories.py").read_bytes() == (
        STEPS_DIR / "common" / "categories.py"
    ).read_bytes()
    booster = xgb.Booster(model_file=str(root / "model" / "xgboost-model"))
    assert booster.feature_types == ["c", "c", "q", "q", "q"]
    # the code tree the training job gets: the user's folder plus the loop's in mlops_loop/
    assert (trained["source"] / LOOP_FOLDER / "serving_files.py").is_file()
    assert (trained["source"] / LOOP_FOLDER / "common" / "categories.py").is_file()


def test_evaluate_under_trainer_custom_scores_what_xgboost_predicts(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    root = trained["root"]
    _, test, p = _independent(root)
    assert evaluate.main(["--model-dir", str(root / "artifact"), "--test-dir",
                          str(root / "data" / "test"), "--output-dir", str(tmp_path), "--target",
                          "sex", "--metric", "auc", "--floor", "0.6", "--trainer", "custom",
                          "--bootstrap-samples", "200", "--min-positives", "20"]) == 0  # fmt: skip
    report = json.loads((tmp_path / "evaluation.json").read_text())
    y = test["sex"].to_numpy()
    assert report["gate"]["challenger"] == pytest.approx(roc_auc_score(y, p), rel=1e-6)
    assert report["gate"]["decision"] == "register"


OTHER_TYPES = {  # problem: (target, its category features, metric)
    "multiclass": ("species", ["island"], "accuracy"),
    "regression": ("body_mass_g", ["species", "island"], "rmse"),
}


@pytest.mark.parametrize("problem", sorted(OTHER_TYPES))
def test_the_example_takes_category_features_for_every_problem_type(
    problem: str, tmp_path: Path
) -> None:
    """Multi-class (a text label) and regression: Evaluate under --trainer custom scores
    exactly xgboost's predictions on the independently encoded test split."""
    from sklearn.metrics import accuracy_score, mean_squared_error

    target, categories, metric = OTHER_TYPES[problem]
    (tmp_path / "in").mkdir()
    penguin_data.generate(1500, seed=12).to_csv(tmp_path / "in" / "penguins.csv", index=False)
    features = categories + NUMBERS
    schema = {"target": target, "problem_type": problem, "max_missing_fraction": 0.05,
              "features": [{"name": n, "type": "category" if n in categories else "float"}
                           for n in features]}  # fmt: skip
    _train_example(tmp_path, schema, target)
    with (tmp_path / "data" / "train" / "train.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    encoding = {n: sorted({r[n] for r in rows if r[n] != ""}) for n in categories}
    test = pd.read_csv(tmp_path / "data" / "test" / "test.csv", dtype={n: str for n in categories})
    p = _predict(tmp_path, test, encoding, features)
    out = tmp_path / "evaluation"
    floor = "1000" if metric == "rmse" else "0.5"
    assert evaluate.main(["--model-dir", str(tmp_path / "artifact"), "--test-dir",
                          str(tmp_path / "data" / "test"), "--output-dir", str(out), "--target",
                          target, "--metric", metric, "--floor", floor, "--trainer", "custom",
                          "--bootstrap-samples", "100"]) == 0  # fmt: skip
    report = json.loads((out / "evaluation.json").read_text())
    y = test[target].to_numpy()
    if problem == "multiclass":
        value = report["multiclass_classification_metrics"]["accuracy"]["value"]
        assert value == pytest.approx(accuracy_score(y, p.argmax(axis=1)))
    else:
        value = report["regression_metrics"]["rmse"]["value"]
        assert value == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-5)


@pytest.fixture(scope="module")
def served(trained: dict[str, Any]) -> dict[str, Any]:
    """The archive unpacked where the endpoint has it, its own inference.py loaded."""
    import tarfile

    root = trained["root"]
    opt_ml_model = root / "opt" / "ml" / "model"
    opt_ml_model.mkdir(parents=True)
    with tarfile.open(root / "artifact" / "model.tar.gz") as tar:
        tar.extractall(opt_ml_model, filter="data")
    inference = _import_user_module(opt_ml_model / "code", "inference")
    return {"inference": inference, "model": inference.model_fn(str(opt_ml_model))}


def test_the_endpoint_takes_category_text_and_answers_what_xgboost_predicts(
    trained: dict[str, Any], served: dict[str, Any]
) -> None:
    root = trained["root"]
    encoding, test, p = _independent(root)
    rows = test[FEATURES].head(40)
    body = rows.to_csv(header=False, index=False)
    assert np.allclose(invoke(served, body), p[:40], rtol=1e-5, atol=1e-6)
    # A category the training split never had: served as missing, as Evaluate scores it.
    unseen = rows.head(3).copy()
    unseen["island"] = "Atlantis"
    assert "Atlantis" not in encoding["island"]
    expected = _predict(root, unseen, encoding)
    answer = invoke(served, unseen.to_csv(header=False, index=False))
    assert np.allclose(answer, expected, rtol=1e-5, atol=1e-6)
    missing = unseen.copy()
    missing["island"] = ""
    assert np.allclose(answer, _predict(root, missing, encoding), rtol=1e-5, atol=1e-6)
    # A row outside the contract is a 400 naming the row, not a 500.
    bad = respond(served, "Adelie,Biscoe,not-a-number,18.0,190\n")
    assert bad.status_code == 400
    assert "row 1" in bad.get_data(as_text=True)


def _tampered(trained: dict[str, Any], tmp_path: Path, change: Any) -> Path:
    model = tmp_path / "model"
    shutil.copytree(trained["root"] / "model", model)
    change(model)
    return _archive(model, tmp_path / "artifact")


def _load(directory: Path, tmp_path: Path, trainer: str = "custom") -> Any:
    return model_loading.load_model_dir(
        directory, tmp_path / "scratch", "challenger", verified=True, trainer=trainer
    )


def _append(path: Path, text: str) -> None:
    path.write_bytes(path.read_bytes() + text.encode())


CHANGES = {
    "changed inference.py": (
        lambda m: _append(m / "code" / "inference.py", "\nimport os  # anything\n"),
        "changed ['inference.py']",
    ),
    "changed categories.py": (
        lambda m: _append(m / "code" / "common" / "categories.py", "\n"),
        "changed ['common/categories.py']",
    ),
    "a pyc beside it": (
        lambda m: (
            (m / "code" / "__pycache__").mkdir()
            or (m / "code" / "__pycache__" / "inference.cpython-312.pyc").write_bytes(b"\0")
        ),
        "extra ['__pycache__/inference.cpython-312.pyc']",
    ),
    "no code folder": (
        lambda m: shutil.rmtree(m / "code"),
        "has category features but no code/ folder",
    ),
    "no encoding": (
        lambda m: (m / "metadata" / "categories.json").unlink(),
        "categorical features ['island', 'species'] are not the features of",
    ),
    "an encoding missing a feature": (
        lambda m: (m / "metadata" / "categories.json").write_text(
            json.dumps(
                {
                    "format": "category-codes-v1",
                    "unseen": "missing",
                    "features": {"species": ["Adelie", "Chinstrap", "Gentoo"]},
                }
            )  # fmt: skip
        ),
        "['island', 'species'] are not the features of metadata/categories.json ['species']",
    ),
    "a category that is not canonical text": (
        lambda m: _encoding(m, island=["Biscoe", "Dream", "Torgersen "]),
        "feature 'island' has values that are not canonical text ['Torgersen ']",
    ),
    "more categories than fit_encoding allows": (
        lambda m: _encoding(m, island=sorted(f"v{i:04d}" for i in range(1001))),
        "feature 'island' has 1001 categories, more than 1000",
    ),
    # XGBoost does not check feature types at predict time: the endpoint's inference.py
    # would send the category codes as numbers and answer other probabilities than Evaluate's
    "metadata types declaring a category a number": (
        lambda m: _metadata(m, feature_types=["q"] * len(FEATURES)),
        f"model-metadata.json feature_types {['q'] * len(FEATURES)} is not its booster's "
        f"{['c'] * len(CATEGORIES) + ['q'] * len(NUMBERS)}",
    ),
    "metadata without feature_types": (
        lambda m: _metadata(m, feature_types=None),
        "model-metadata.json feature_types None is not its booster's",
    ),
    "metadata feature_names in another order": (
        lambda m: _metadata(m, feature_names=[FEATURES[1], FEATURES[0], *FEATURES[2:]]),
        "model-metadata.json feature_names ['island', 'species',",
    ),
    "metadata without feature_names": (
        lambda m: _metadata(m, feature_names=None),
        "model-metadata.json feature_names None is not its booster's",
    ),
    "categories out of order": (
        lambda m: _encoding(m, island=["Dream", "Biscoe", "Torgersen"]),
        "feature 'island' must list its categories once each, sorted",
    ),
}


def _metadata(model: Path, **keys: Any) -> None:
    """Set (None: remove) keys of the archive's metadata/model-metadata.json."""
    path = model / "metadata" / "model-metadata.json"
    stored = json.loads(path.read_text())
    for key, value in keys.items():
        if value is None:
            del stored[key]
        else:
            stored[key] = value
    path.write_text(json.dumps(stored))


def _encoding(model: Path, **features: list[str]) -> None:
    path = model / "metadata" / "categories.json"
    stored = json.loads(path.read_text())
    stored["features"].update(features)
    path.write_text(json.dumps(stored))


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_evaluate_refuses_a_custom_archive_whose_serving_files_are_not_the_loops(
    trained: dict[str, Any], tmp_path: Path, case: str
) -> None:
    change, message = CHANGES[case]
    artifact = _tampered(trained, tmp_path, change)
    with pytest.raises(model_loading.EvaluationError) as error:
        _load(artifact, tmp_path)
    assert str(error.value).startswith("challenger model: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_untampered_archive_loads_and_the_check_is_the_custom_trainers_only(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    model = _load(trained["root"] / "artifact", tmp_path)
    assert sorted(model.encoding) == ["island", "species"]
    # train.py's own archive under trainer xgboost is the loop's output: not checked here
    artifact = _tampered(
        trained, tmp_path / "xgb", lambda m: _append(m / "code" / "inference.py", "\n")
    )
    assert _load(artifact, tmp_path / "xgb", trainer="xgboost").encoding


def test_a_custom_archive_without_categories_may_not_carry_code(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    """Algorithm mode ignores code/, but a custom model has no business shipping any."""
    booster = xgb.Booster(model_file=str(trained["root"] / "model" / "xgboost-model"))
    (tmp_path / "code").mkdir()
    data = xgb.DMatrix([[0.0], [1.0]], [0, 1], feature_names=["x"], feature_types=["q"])
    plain = xgb.train({"objective": "binary:logistic"}, data, 1)
    declared = {"feature_names": ["x"], "feature_types": ["q"]}
    with pytest.raises(custom_serving.ServingFilesError, match="has a code/ folder but no"):
        custom_serving.check_custom_serving_files(tmp_path, plain, {}, declared)
    metadata = json.loads(
        (trained["root"] / "model" / "metadata" / "model-metadata.json").read_text()
    )
    with pytest.raises(custom_serving.ServingFilesError, match="no copy of the loop's"):
        custom_serving.check_custom_serving_files(
            trained["root"] / "model",
            booster,
            {"species": ["a"], "island": ["b"]},
            metadata,
            references=[tmp_path / "nowhere" / "inference.py"],
        )


def test_a_custom_booster_without_feature_types_is_refused(tmp_path: Path) -> None:
    """Without types in the booster there is nothing to compare the metadata's with."""
    data = xgb.DMatrix([[0.0], [1.0]], [0, 1], feature_names=["x"])
    booster = xgb.train({"objective": "binary:logistic"}, data, 1)
    assert booster.feature_types is None
    declared = {"feature_names": ["x"], "feature_types": ["q"]}
    with pytest.raises(custom_serving.ServingFilesError, match="no feature names and types"):
        custom_serving.check_custom_serving_files(tmp_path, booster, {}, declared)


def test_evaluate_takes_the_reference_only_from_its_own_code_tree(evaluate_tree: Path) -> None:
    """The default reference is the train/ the definition ships inside Evaluate's code tree, and
    nothing beside that tree: the repository's steps/train/inference.py, next to steps/evaluate
    as /opt/ml/processing/input/train would be next to the container's code folder, is not
    taken (steps/evaluate has no train/ of its own)."""
    assert SHIPPED_REFERENCES == (STEPS_DIR / "evaluate" / "train" / "inference.py",)
    assert (STEPS_DIR / "train" / "inference.py").is_file()
    with pytest.raises(custom_serving.ServingFilesError, match="no copy of the loop's"):
        custom_serving.expected_serving_files(SHIPPED_REFERENCES)
    shipped = evaluate_tree / custom_serving.REFERENCE_DIR / "inference.py"
    assert shipped.read_bytes() == (STEPS_DIR / "train" / "inference.py").read_bytes()


def test_a_mlops_loop_folder_of_the_users_is_a_settings_error(tmp_path: Path) -> None:
    """The config load refuses it first; the definition's own check is a one-line settings
    error too (the generator's exit 2, "bad settings"), not a missing file."""
    source = tmp_path / "mine"
    shutil.copytree(EXAMPLE, source)
    (source / LOOP_FOLDER).mkdir()
    folders = {step: STEPS_DIR / step for step in ("train", "evaluate")}
    store = offline.CodeStore(tmp_path / "code")
    with pytest.raises(SettingsError) as error:
        custom_category_trees(source, folders, STEPS_DIR, store)
    assert f"{source / LOOP_FOLDER} is a folder of yours" in str(error.value)
    assert "\n" not in str(error.value)
