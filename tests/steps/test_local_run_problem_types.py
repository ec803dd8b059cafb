"""`make local-run DATA=... TARGET=...` for every problem type: the type inferred from the
target's values with the reason said, PROBLEM and POSITIVE overriding it, and the bundled
penguins example run end to end as a multi-class (species) and a regression (body mass)
problem by the real step scripts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops_config import parse_environment, read_cdk_json_context
from pipeline_code import local_run, local_settings, penguin_data
from pipeline_code.schema_inference import SchemaInferenceError, describe, infer

PENGUINS = penguin_data.BUNDLED


@pytest.mark.parametrize(
    ("target", "extra", "problem", "why"),
    [("species", {}, "multiclass", "text with 3 values ['Adelie', 'Chinstrap', 'Gentoo']"),
     ("body_mass_g", {}, "regression", "whole numbers with"),
     ("bill_length_mm", {}, "regression", "numbers with"),
     ("sex", {"positive_class": "female"}, "binary", "POSITIVE='female' names class 1"),
     ("year", {"problem": "multiclass"}, "multiclass", "PROBLEM says so")],
)  # fmt: skip
def test_the_problem_type_is_inferred_and_explained(
    target: str, extra: dict, problem: str, why: str
) -> None:
    schema, ignored, reason = infer(PENGUINS, target, **extra)
    assert schema.get("problem_type", "binary") == problem
    assert why in reason
    line = describe(schema, ignored, reason)
    assert f"problem {problem} ({reason})" in line


def test_whole_numbers_with_few_values_are_classes(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": range(300), "grade": [1, 2, 3] * 100})
    frame.to_csv(tmp_path / "d.csv", index=False)
    schema, _, reason = infer(tmp_path / "d.csv", "grade")
    assert schema["problem_type"] == "multiclass" and "whole numbers with 3 values" in reason


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [("sex", {}, "POSITIVE=value"),
     ("species", {"problem": "regression"}, "PROBLEM=regression needs numbers in --target"),
     ("species", {"problem": "multiclass", "positive_class": "Adelie"},
      "POSITIVE goes with a binary target")],
)  # fmt: skip
def test_a_problem_type_that_does_not_fit_is_refused(
    target: str, extra: dict, message: str
) -> None:
    with pytest.raises(SchemaInferenceError, match=message.replace("=", "=")):
        infer(PENGUINS, target, **extra)


@pytest.mark.parametrize(
    ("target", "section", "metric"),
    [("species", "multiclass_classification_metrics", "macro_f1"),
     ("body_mass_g", "regression_metrics", "r2")],
)  # fmt: skip
def test_the_bundled_example_runs_end_to_end_per_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, section: str, metric: str
) -> None:
    code = local_run.main(
        ["--workdir", str(tmp_path / "run"), "--data", str(PENGUINS), "--target", target]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"note: metric {metric}" in out
    assert "gate: PASSED" in out
    evaluation = tmp_path / "run" / "evaluate" / "opt" / "ml" / "processing" / "evaluation"
    text = (evaluation / "evaluation.json").read_text()
    assert section in text


def _regression_rmse_config(tolerance: float) -> Any:
    """cdk.json's dev environment turned into a regression project gated on RMSE (its floor and
    tolerance in grams), as a user with such a project has it."""
    context = copy.deepcopy(read_cdk_json_context())
    context["schema"] = {
        "target": "body_mass_g",
        "problem_type": "regression",
        "features": [{"name": "flipper_length_mm", "type": "float"}],
    }
    block = context["environments"]["dev"]
    block["pipeline"] = {"metric": "rmse", "metric_floor": 600.0, "champion_tolerance": tolerance}
    block.setdefault("monitoring", {})["quality_metric_floor"] = 600.0
    return parse_environment(context, "dev")


@pytest.mark.parametrize(
    ("argv", "metric", "tolerance", "method"),
    [(["--target", "species", "--problem", "multiclass"], "macro_f1", 0.01, "bootstrap"),
     (["--target", "species"], "macro_f1", 0.01, "bootstrap"),
     (["--target", "species", "--tolerance", "0.05"], "macro_f1", 0.05, "bootstrap"),
     (["--target", "sex", "--positive-class", "female"], "auc", 0.01, "delong"),
     (["--target", "body_mass_g"], "rmse", 20.0, "bootstrap")],
)  # fmt: skip
def test_a_swapped_metric_does_not_keep_the_configured_tolerance(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], metric: str, tolerance: float, method: str
) -> None:
    # cdk.json's tolerance of 20 (grams of RMSE) as a macro F1 tolerance could never fail the
    # comparison (F1 differences are at most 1): the swapped metric takes its type's default,
    # unless --tolerance says otherwise; the configured metric keeps the configured one.
    monkeypatch.setattr(local_settings, "_project_config", lambda: _regression_rmse_config(20.0))
    settings = local_settings.resolve_settings(
        local_run.parse_args(["--data", str(PENGUINS), *argv])
    )
    assert (settings.metric, settings.tolerance, settings.gate_method) == (
        metric,
        tolerance,
        method,
    )
    swapped = [note for note in settings.notes if "is not a" in note]
    assert bool(swapped) == (metric != "rmse"), settings.notes
