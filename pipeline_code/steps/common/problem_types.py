"""The problem types a model can solve and the gate metrics of each, with each metric's
direction and range: what the steps, the gate and the configuration all decide from.

    binary      auc, f1, accuracy, precision, recall     higher is better, in [0, 1]
    multiclass  accuracy, macro_f1, weighted_f1          higher is better, in [0, 1]
                log_loss                                 lower is better, >= 0
    regression  r2                                       higher is better, <= 1
                rmse, mae, mse                           lower is better, >= 0

For a lower-is-better metric the gate's floor is a ceiling (the challenger's metric must not
exceed it) and "worse than the champion" means a larger value. `mlops_config` keeps the same
table for the configuration (a test pins that both agree); this copy travels with the step
code, which imports nothing from outside its folder.
"""

from __future__ import annotations

BINARY = "binary"
MULTICLASS = "multiclass"
REGRESSION = "regression"
PROBLEM_TYPES = (BINARY, MULTICLASS, REGRESSION)
DEFAULT_PROBLEM_TYPE = BINARY

METRICS: dict[str, tuple[str, ...]] = {
    BINARY: ("auc", "f1", "accuracy", "precision", "recall"),
    MULTICLASS: ("accuracy", "macro_f1", "weighted_f1", "log_loss"),
    REGRESSION: ("rmse", "mae", "mse", "r2"),
}
ALL_METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for ms in METRICS.values() for m in ms))
#: Smaller is better: the floor is a ceiling and the champion delta is negated.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mse"})
#: Metrics whose value lies in [0, 1] (the floor must too); r2 is at most 1, errors at least 0.
UNIT_INTERVAL = frozenset(
    {"auc", "f1", "accuracy", "precision", "recall"} | {"macro_f1", "weighted_f1"}
)


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def check_metric(problem_type: str, metric: str) -> None:
    """Raise ValueError naming the allowed metrics when `metric` does not fit `problem_type`."""
    if problem_type not in METRICS:
        raise ValueError(
            f"problem_type = {problem_type!r} is not allowed: one of {', '.join(PROBLEM_TYPES)}"
        )
    if metric not in METRICS[problem_type]:
        raise ValueError(
            f"metric = {metric!r} is not allowed with problem_type {problem_type!r}: one of "
            f"{', '.join(METRICS[problem_type])}"
        )


def floor_range(metric: str) -> tuple[float, float]:
    """The values a floor (a ceiling, for lower-is-better metrics) may take for `metric`."""
    if metric in UNIT_INTERVAL:
        return 0.0, 1.0
    if metric == "r2":
        return float("-inf"), 1.0
    return 0.0, float("inf")


def improvement(metric: str, challenger: float, champion: float) -> float:
    """How much better the challenger is than the champion (> 0: better), in the metric's
    units: challenger - champion, negated for a lower-is-better metric."""
    delta = challenger - champion
    return delta if higher_is_better(metric) else -delta


def clears(metric: str, value: float, floor: float) -> bool:
    """Whether `value` clears the floor: >= floor, or <= the ceiling for lower-is-better."""
    return value >= floor if higher_is_better(metric) else value <= floor
