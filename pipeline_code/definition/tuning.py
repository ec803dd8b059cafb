"""The Train step as a hyperparameter tuning job (`pipeline.tuning`): the same training job,
run as the trials of a SageMaker tuning job, and the best trial's model goes on.

Each trial is the training job the Train step would start, to the letter: its
CreateTrainingJob request (image, role, channels including the training record, output and
volume KMS keys, network isolation, traffic encryption, VPC, spot, stopping condition, static
hyperparameters) becomes the tuning job's TrainingJobDefinition. The SDK's tuner builds the
tuning configuration (ranges, strategy, objective, budget, early stopping) but not the trials:
SDK 3.27's HyperparameterTuner leaves network isolation, traffic encryption and the volume key
out of the definition it builds, so its definition is replaced by the training step's.

Two differences, both forced:

* The tuning API takes no container entrypoint (HyperParameterAlgorithmSpecification has none),
  so the trials run train.py in the XGBoost container's script mode: `sagemaker_program` names
  the script and `sagemaker_submit_directory` the code channel's local folder (the container
  has no network to fetch code from S3). The SDK's drivers channel is not needed.
* No CheckpointConfig: every trial of a tuning job would share the one checkpoint prefix of
  the definition, and train.py resumes from whatever it finds there, so a trial could continue
  another trial's booster grown with other hyperparameters. A spot trial that is interrupted
  starts over instead.

The objective is the gate metric on the validation split as train.py prints it
(mlops_config.tuning.TUNING_OBJECTIVES: name, direction, regex): XGBoost's evaluation lines
every 10 rounds (`[10]\tvalidation-auc:0.91`: the intermediate values early stopping and
Hyperband judge; none for accuracy and mae) and, last, its summary of the model it saved
(`validation_auc 0.9300`: the final value, which ranks the trials).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_config.tuning import (
    SCALINGS,
    STRATEGIES,
    TuningObjective,
    fixed_hyperparameters,
    hyperparameter_bounds,
    tuning_objective,
)
from pipeline_code.definition.context import Context
from pipeline_code.definition.contract import (
    SEED,
    STEP_TRAIN,
    TRAINING_OUTPUTS,
    pipeline_output_prefix,
)
from pipeline_code.definition.setting_rules import problem_type
from pipeline_code.definition.trained_model import TrainedModel

#: Script mode (module docstring): the code channel, mounted where the container reads it.
CODE_CHANNEL = "code"
SCRIPT_MODE = {
    "sagemaker_program": "train.py",
    "sagemaker_submit_directory": f"/opt/ml/input/data/{CODE_CHANNEL}",
}
#: XGBoost prints an evaluation line every this many rounds (train.py's verbose_eval).
ROUNDS_PER_REPORT = 10
#: What the training request holds that a trial's definition takes elsewhere or leaves out.
_NOT_COPIED = frozenset(
    {"AlgorithmSpecification", "HyperParameters", "Tags", "CheckpointConfig", "TrainingJobName"}
)


def parameter_ranges(ranges: Mapping[str, Any]) -> dict[str, Any]:
    """The SDK's parameter ranges of `pipeline.tuning.ranges` (an integer hyperparameter gets
    an integer range, the others a continuous one, `values` a categorical one)."""
    from sagemaker.core.parameter import (
        CategoricalParameter,
        ContinuousParameter,
        IntegerParameter,
    )

    out: dict[str, Any] = {}
    for name, search in sorted(ranges.items()):
        if search.values is not None:
            out[name] = CategoricalParameter([_text(name, v) for v in search.values])
        elif _integral(name):
            out[name] = IntegerParameter(
                int(search.min), int(search.max), scaling_type=SCALINGS[search.scaling]
            )
        else:
            out[name] = ContinuousParameter(
                search.min, search.max, scaling_type=SCALINGS[search.scaling]
            )
    return out


def _integral(name: str) -> bool:
    """Whether `name` is an integer hyperparameter (its rule in mlops_config)."""
    return hyperparameter_bounds(name)[2]


def _text(name: str, value: float) -> str:
    return str(int(value)) if _integral(name) else repr(float(value))


def objective_of(settings: Any) -> TuningObjective:
    """The tuning objective of the pipeline's gate metric and problem type."""
    return tuning_objective(problem_type(settings.schema), settings.metric)


def metric_definitions(objective: TuningObjective) -> list[dict[str, str]]:
    return [{"Name": objective.name, "Regex": objective.regex}]


def trial_definition(
    training_request: Mapping[str, Any], tuned: set[str], objective: TuningObjective
) -> dict[str, Any]:
    """The tuning job's TrainingJobDefinition from the Train step's CreateTrainingJob request:
    everything copied, except what the tuning API takes elsewhere (module docstring)."""
    import botocore.session

    members = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .shape_for("HyperParameterTrainingJobDefinition")
        .members
    )
    unknown = sorted(set(training_request) - set(members) - _NOT_COPIED)
    if unknown:
        # a new training setting must reach the trials too, or be left out knowingly here
        raise ValueError(f"the training request's {', '.join(unknown)} has no place in a trial")
    algorithm = training_request["AlgorithmSpecification"]
    definition = {key: value for key, value in training_request.items() if key not in _NOT_COPIED}
    definition["InputDataConfig"] = [
        channel
        for channel in training_request["InputDataConfig"]
        if channel["ChannelName"] != "sm_drivers"  # the entrypoint's drivers: script mode instead
    ]
    if not any(c["ChannelName"] == CODE_CHANNEL for c in definition["InputDataConfig"]):
        raise ValueError(f"the training request has no {CODE_CHANNEL!r} channel to run from")
    definition["AlgorithmSpecification"] = {
        "TrainingImage": algorithm["TrainingImage"],
        "TrainingInputMode": algorithm["TrainingInputMode"],
        "MetricDefinitions": metric_definitions(objective),
    }
    definition["StaticHyperParameters"] = {
        **{k: v for k, v in training_request["HyperParameters"].items() if k not in tuned},
        **SCRIPT_MODE,
    }
    return definition


def tuning_step(ctx: Context, training: Any, for_tuner: Any) -> TrainedModel:
    """The Train step as a tuning job (module docstring).

    Args:
        training: The TrainingStep the trials copy (its request; never added to the pipeline).
        for_tuner: An identical TrainingStep whose ModelTrainer and channels the SDK's tuner gets
            (a second one, because building a request changes the trainer).
    """
    from sagemaker.core.shapes import HyperbandStrategyConfig, HyperParameterTuningJobStrategyConfig
    from sagemaker.mlops.workflow.steps import TuningStep
    from sagemaker.train.tuner import HyperparameterTuner

    tuning = ctx.settings.tuning
    assert tuning is not None
    objective = objective_of(ctx.settings)
    ranges = parameter_ranges(tuning.ranges)
    trainer = for_tuner.step_args.func_args[0]
    strategy_config = None
    if tuning.strategy == "hyperband":
        # Hyperband's resource is the objective's reports: one per ROUNDS_PER_REPORT rounds and
        # the summary; a full run must never reach MaxResource (a stopped trial saves no model).
        # num_round is fixed in a hyperband definition (no NumRound parameter: see
        # mlops_config.tuning.fixed_hyperparameters), so no run trains more rounds than this.
        assert "num_round" in fixed_hyperparameters(tuning)
        rounds = ctx.settings.hyperparameters.num_round
        strategy_config = HyperParameterTuningJobStrategyConfig(
            hyperband_strategy_config=HyperbandStrategyConfig(
                min_resource=1, max_resource=rounds // ROUNDS_PER_REPORT + 3
            )
        )
    tuner = HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=objective.name,
        objective_type=objective.type,
        hyperparameter_ranges=ranges,
        metric_definitions=metric_definitions(objective),
        strategy=STRATEGIES[tuning.strategy],
        strategy_config=strategy_config,
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        early_stopping_type=tuning.early_stopping.title(),
        random_seed=SEED,
        base_tuning_job_name=f"{ctx.settings.pipeline_name}-tune"[:32],
    )
    step_args = tuner.tune(inputs=for_tuner.step_args.func_kwargs["input_data_config"])

    class _TrialsAsTrainStep(TuningStep):
        @property
        def arguments(self) -> dict[str, Any]:
            request = dict(super().arguments)
            request["TrainingJobDefinition"] = trial_definition(
                training.arguments, set(ranges), objective
            )
            # the trials carry the Train step's tags (cost allocation), the tuning job too
            request["Tags"] = list(training.arguments.get("Tags", []))
            return request

    step = _TrialsAsTrainStep(
        name=STEP_TRAIN,
        step_args=step_args,
        description=(
            f"Tune the XGBoost challenger: up to {tuning.max_jobs} training jobs "
            f"({tuning.strategy}), the best by {objective.name} goes on."
        ),
        cache_config=ctx.cache_config(),
    )
    best = step.properties.TrainingJobSummaries[0].TrainingJobName
    return TrainedModel(
        step=step,
        artifacts=step.get_top_model_s3_uri(
            top_k=0,
            s3_bucket=ctx.bucket,
            prefix=pipeline_output_prefix(ctx.settings.pipeline_name, TRAINING_OUTPUTS).rstrip("/"),
        ),
        training_job_name=best,
        metadata={"tuning_job_name": step.properties.HyperParameterTuningJobName},
    )
