"""`make local-run TUNE=N`: a small random search over the tuning ranges, on this machine, so
ranges can be tried before paying for a SageMaker tuning job.

Each trial is train.py on the prepared train and validation channels with one random draw of the
ranged hyperparameters (the others as configured), scored by the tuning objective of the run's
gate metric (mlops_config.tuning.TUNING_OBJECTIVES: the gate metric on the validation split, or
the RMSE for mse and r2, as train.py records it in the model's metadata, the same number the
SageMaker tuning job's objective reads from its log), the best by its direction (Maximize or
Minimize). The ranges are cdk.json's `pipeline.tuning.ranges` of the environment (`ENV`, dev by
default); without that block, `DEFAULT_RANGES` (a configuration error is an error). This is a
random search, not SageMaker's Bayesian or Hyperband strategies: draws are independent and
uniform (log-uniform for `scaling: log`; `auto` is drawn linearly), seeded, so a run is
reproducible. The trials and the best are written to `<workdir>/tune/trials.json` (each trial's
model under `trial-N/model`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_config import ConfigError, load_config
from mlops_config.tuning import (
    TUNING_OBJECTIVES,
    SearchRange,
    TuningObjective,
    hyperparameter_bounds,
)
from pipeline_code.local_settings import LocalRunError

#: Ranges searched when cdk.json configures none (a common XGBoost starting point).
DEFAULT_RANGES: dict[str, SearchRange] = {
    "eta": SearchRange(min=0.02, max=0.3, scaling="log"),
    "max_depth": SearchRange(min=3, max=10),
    "subsample": SearchRange(min=0.6, max=1.0),
    "min_child_weight": SearchRange(min=1, max=10, scaling="log"),
}


#: The search's record in its work folder: every trial's values and score, and the best.
TRIALS_FILE = "trials.json"
#: The objective of a binary run with the default gate metric.
VALIDATION_AUC = TUNING_OBJECTIVES[("binary", "auc")]


@dataclass(frozen=True)
class Trial:
    number: int
    hyperparameters: dict[str, Any]
    objective: float


def configured_ranges(environment: str = "dev") -> tuple[dict[str, SearchRange], str]:
    """cdk.json's `pipeline.tuning.ranges` of `environment`, else (no such block) the
    defaults; and where they came from. Raises LocalRunError naming the key of a bad
    configuration."""
    try:
        tuning = load_config(environment).pipeline.tuning
    except ConfigError as error:
        raise LocalRunError(f"cdk.json: {error}") from None
    if tuning is None:
        return dict(DEFAULT_RANGES), (
            f"default ranges (cdk.json sets no pipeline.tuning for {environment})"
        )
    return dict(tuning.ranges), f"cdk.json pipeline.tuning.ranges ({environment})"


def draw(name: str, search: SearchRange, rng: random.Random) -> Any:
    """One value of `name` from its range (integers for an integer hyperparameter)."""
    _, _, integral = hyperparameter_bounds(name)
    if search.values is not None:
        value: float = rng.choice(search.values)
    else:
        assert search.min is not None and search.max is not None
        low, high = float(search.min), float(search.max)
        if search.scaling == "log":
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
        elif integral:
            return rng.randint(int(low), int(high))
        else:
            value = rng.uniform(low, high)
    if integral:
        if search.values is not None:
            return int(value)
        assert search.min is not None and search.max is not None
        return min(max(round(value), int(search.min)), int(search.max))
    return round(value, 6)


def random_search(
    trials: int,
    ranges: Mapping[str, SearchRange],
    train_trial: Callable[[dict[str, Any], Path], float],
    workdir: Path,
    seed: int,
    log: Callable[[str], None] = print,
    objective: TuningObjective = VALIDATION_AUC,
) -> Trial:
    """Run `trials` draws through `train_trial(hyperparameters, model_dir) -> objective value`,
    log a table of them, and return the best by the objective's direction (the first of
    equals)."""
    if trials < 1:
        raise ValueError(f"TUNE={trials} is not allowed: at least 1 trial")
    rng = random.Random(seed)
    done: list[Trial] = []
    for number in range(1, trials + 1):
        drawn = {name: draw(name, ranges[name], rng) for name in sorted(ranges)}
        value = train_trial(drawn, workdir / f"trial-{number}")
        done.append(Trial(number, drawn, value))
    sign = 1 if objective.type == "Maximize" else -1
    best = max(done, key=lambda trial: (sign * trial.objective, -trial.number))
    log(trial_table(done, best, objective))
    record = {
        "search": "random",
        "seed": seed,
        "objective_metric": objective.name,
        "objective_type": objective.type,
        "best": best.number,
        "trials": [vars(trial) | {"model_dir": f"trial-{trial.number}/model"} for trial in done],
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / TRIALS_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return best


def trial_table(
    trials: list[Trial], best: Trial, objective: TuningObjective = VALIDATION_AUC
) -> str:
    names = sorted(trials[0].hyperparameters)
    widths = [max(len(name), 10) for name in names]
    header = "trial  " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))
    name = objective.name
    lines = [f"{header}  {name:>14}"]
    for trial in trials:
        values = "  ".join(
            f"{_shown(trial.hyperparameters[n]):>{w}}" for n, w in zip(names, widths, strict=True)
        )
        mark = "  <- best" if trial is best else ""
        lines.append(f"{trial.number:>5}  {values}  {trial.objective:14.4f}{mark}")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4g}"
