"""Monitoring: drift checks, the alarms every part of the loop reports to, a dashboard."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions

from constructs import Construct
from constructs.alarms import any_occurrence_alarm
from constructs.drift_monitor import DriftMonitor
from constructs.predictions_marker import PREDICTIONS_PREFIX
from mlops_config import EnvironmentConfig
from mlops_config.pipeline import LOWER_IS_BETTER
from pipeline_code.definition import model_quality_metrics
from stacks.data_stack import CAPTURE_PREFIX, DataStack
from stacks.endpoint_widgets import endpoint_widgets
from stacks.serving_stack import ServingStack
from stacks.training_stack import TrainingStack, retrain_alarm_prefix

PIPELINE_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"


class MonitoringStack(Stack):
    """Can be redeployed freely: holds no data. Exposes `drift` (DriftMonitor of the evidently
    engine, else None), `drift_share` (metric of either engine; None for a serverless endpoint,
    which captures no traffic: no drift check, no drift alarm), `alarms` (name -> Alarm), `watched`
    (the EndpointName of the drift metrics: the endpoint, or in batch serving the scoring
    pipeline)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        training: TrainingStack,
        serving: ServingStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        m = config.monitoring
        self.drift: DriftMonitor | None = None
        self.drift_share: cloudwatch.IMetric | None = None
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.feature_drift: list[cloudwatch.IMetric] = []
        self.feature_missing: list[cloudwatch.IMetric] = []
        self.feature_drift_title = ""
        # A serverless endpoint captures no traffic: nothing to check for drift (and the
        # configuration refuses model-monitor with it).
        # Batch serving has no endpoint: each scoring run's rows are checked, and the metrics
        # carry the scoring pipeline's name where an endpoint's carry the endpoint's.
        self.watched = (
            config.scoring_pipeline_name if config.serving.is_batch else serving.endpoint_name
        )
        watched_data = (
            "the data scored by " + self.watched
            if config.serving.is_batch
            else f"{self.watched}'s traffic"
        )
        if m.engine == "model-monitor":
            self._model_monitor_drift(config, serving)
        elif config.serving.is_batch or (
            serving.endpoint is not None and not serving.endpoint.serverless
        ):
            self._evidently_drift(config, data)
        pipeline = {"PipelineName": config.pipeline_name}
        if self.drift_share is not None:
            # the name prefix is what lets this alarm start a retrain (Training stack rule)
            self.alarms["drift"] = cloudwatch.Alarm(
                self,
                "DriftAlarm",
                alarm_name=f"{retrain_alarm_prefix(config)}drift",
                alarm_description=f"At least {m.drift_share_threshold:.0%} of the features of "
                f"{watched_data} drifted from the training baseline "
                f"({self.drift_engine})",
                metric=self.drift_share,
                threshold=m.drift_share_threshold,
                comparison_operator=(
                    cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
                ),
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        # The eval-only pipeline publishes the production model's quality (every problem type,
        # its metrics under their CloudWatch names); the alarm watches the gate metric's worst
        # daily value in the metric's direction.
        quality = model_quality_metrics()
        lower = config.pipeline.metric in LOWER_IS_BETTER
        self.quality_metric = cloudwatch.Metric(
            namespace=config.model_quality_namespace,
            metric_name=quality[config.pipeline.metric],
            dimensions_map={quality["group_dimension"]: config.model_package_group_name},
            statistic="Maximum" if lower else "Minimum",
            period=Duration.days(1),
        )
        self.alarms["quality"] = cloudwatch.Alarm(
            self,
            "QualityAlarm",
            alarm_name=f"{retrain_alarm_prefix(config)}quality",
            alarm_description=f"The production model's {config.pipeline.metric} on newly "
            f"labelled data (eval-only pipeline) {'rose above' if lower else 'fell below'} "
            f"{m.quality_metric_floor}",
            metric=self.quality_metric,
            threshold=m.quality_metric_floor,
            # a lower-is-better metric (rmse, log_loss, ...) breaches upwards: a ceiling
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
            if lower
            else cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            # evaluations happen only when labels land: no data is not a breach
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in self.alarms.values():
            alarm.add_alarm_action(cw_actions.SnsAction(data.topic))
        # Both pipelines exist in every environment; in a promotion target eval-only is the only
        # one that runs, and a failed one leaves the quality alarm without data (not breaching).
        for key, construct_id, name, why in (
            ("pipeline_failed", "PipelineFailed", config.pipeline_name, ""),
            (
                "evaluation_pipeline_failed",
                "EvaluationPipelineFailed",
                config.evaluation_pipeline_name,
                ": the production model's quality on newly labelled data was not measured",
            ),
        ):
            self.alarms[key] = any_occurrence_alarm(
                self,
                construct_id,
                description=f"An execution of {name} failed{why}",
                metric=cloudwatch.Metric(
                    namespace=PIPELINE_NAMESPACE,
                    metric_name="ExecutionFailed",
                    dimensions_map={"PipelineName": name},
                    statistic="Sum",
                    period=Duration.minutes(5),
                ),
                topic=data.topic,
            )
        if self.drift:
            self.alarms["drift_starter_errors"] = any_occurrence_alarm(
                self,
                "DriftStarterErrors",
                description="The drift check could not be started"
                + (" of a scoring run" if config.serving.is_batch else " on schedule"),
                metric=self.drift.starter.metric_errors(period=Duration.hours(1)),
                topic=data.topic,
            )
        self.alarms["schedules_dropped"] = any_occurrence_alarm(
            self,
            "SchedulesDropped",
            description="EventBridge Scheduler dropped an invocation (drift check or "
            "scheduled retrain missed its schedule after all retries)",
            metric=cloudwatch.Metric(
                namespace="AWS/Scheduler",
                metric_name="InvocationDroppedCount",
                dimensions_map={"ScheduleGroup": "default"},
                statistic="Sum",
                period=Duration.hours(1),
            ),
            topic=data.topic,
        )
        self._dashboard(config, training, serving, pipeline)
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

    def _evidently_drift(self, config: EnvironmentConfig, data: DataStack) -> None:
        """The Evidently drift job (on schedule for an endpoint, per scoring run in batch mode):
        its share of drifted features, one 0/1 metric per feature."""
        m = config.monitoring
        self.drift_engine = "Evidently"
        watching = (
            {"scoring_output_prefix": PREDICTIONS_PREFIX}
            if config.serving.is_batch
            else {"schedule": m.schedule, "capture_prefix": f"{CAPTURE_PREFIX}{self.watched}/"}
        )
        self.drift = DriftMonitor(
            self,
            "Drift",
            endpoint_name=self.watched,
            **watching,
            data_bucket=data.data_bucket,
            artifact_bucket=data.artifact_bucket,
            encryption_key=data.artifact_key,
            operations_key=data.operations_key,
            topic=data.topic,
            model_package_group_name=config.model_package_group_name,
            instance_type=m.instance_type,
            drift_share_threshold=m.drift_share_threshold,
            missing_share_threshold=m.missing_share_threshold,
            metrics_namespace=f"{config.prefix}/Drift",
            project=config.project,
            environment=config.name,
            vpc=data.network.placement if data.network else None,
        )
        self.drift_share = self.drift.drift_share
        self.feature_drift = [
            cloudwatch.MathExpression(
                expression=(
                    f"SEARCH('{{{self.drift.metrics_namespace},EndpointName,"
                    f'Feature}} MetricName="FeatureDrifted" '
                    f"EndpointName=\"{self.watched}\"', 'Maximum', 3600)"
                ),
                label="",
                period=Duration.hours(1),
            )
        ]
        self.feature_drift_title = "Drifted features (1 = drifted)"
        self.feature_missing = [
            cloudwatch.MathExpression(
                expression=(
                    f"SEARCH('{{{self.drift.metrics_namespace},EndpointName,"
                    f'Feature}} MetricName="FeatureMissingShare" '
                    f"EndpointName=\"{self.watched}\"', 'Maximum', 3600)"
                ),
                label="",
                period=Duration.hours(1),
            )
        ]

    def _model_monitor_drift(self, config: EnvironmentConfig, serving: ServingStack) -> None:
        """Model Monitor's per-feature baseline drift distances; a feature drifted when its
        distance reaches `drift_distance_threshold` (the share is computed by metric math:
        at most 10 features, checked by the config)."""
        monitor = serving.model_monitor
        if monitor is None:
            raise ValueError("engine model-monitor needs the Serving stack's ModelMonitorSchedule")
        self.drift_engine = "Model Monitor"
        features = [f.name for f in config.schema.features]
        distances = {
            f"f{i}": monitor.feature_drift(i).with_(label=name) for i, name in enumerate(features)
        }
        threshold = config.monitoring.drift_distance_threshold
        drifted = " + ".join(f"IF({key} >= {threshold}, 1, 0)" for key in distances)
        self.drift_share = cloudwatch.MathExpression(
            expression=f"({drifted}) / {len(features)}",
            using_metrics=dict(distances),
            label="share of drifted features",
            period=Duration.hours(1),
        )
        self.feature_drift = list(distances.values())
        self.feature_missing = []  # Model Monitor publishes no missing share per feature
        self.feature_drift_title = f"Baseline drift distance per feature (threshold {threshold})"

    def _dashboard(
        self,
        config: EnvironmentConfig,
        training: TrainingStack,
        serving: ServingStack,
        pipeline: dict[str, str],
    ) -> None:
        def pipeline_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=PIPELINE_NAMESPACE,
                metric_name=name,
                dimensions_map=pipeline,
                statistic="Sum",
                period=Duration.hours(1),
            )

        intake_title, intake_queues, intake_alarm = training.intake
        drift_rows: list[list[cloudwatch.IWidget]] = []
        if self.drift_share is not None:
            drift_rows.append(
                [
                    cloudwatch.GraphWidget(
                        title="Share of drifted features",
                        left=[self.drift_share],
                        left_annotations=[
                            cloudwatch.HorizontalAnnotation(
                                value=config.monitoring.drift_share_threshold, label="threshold"
                            )
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title=self.feature_drift_title, left=self.feature_drift, width=12
                    ),
                ]
            )
        endpoint_alarms, endpoint_rows, serverless_rows = endpoint_widgets(serving)
        drift_rows.extend(serverless_rows)
        if self.feature_missing:  # the Evidently engine's per-feature missing shares
            rise = config.monitoring.missing_share_threshold
            drift_rows.append(
                [
                    cloudwatch.GraphWidget(
                        title=f"Missing share per feature (drifted when more than {rise} above "
                        "the baseline)",
                        left=self.feature_missing,
                        left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
                        width=24,
                    )
                ]
            )
        floor = cloudwatch.HorizontalAnnotation(  # a lower-is-better metric's is a ceiling
            value=config.monitoring.quality_metric_floor,
            label="ceiling" if config.pipeline.metric in LOWER_IS_BETTER else "floor",
        )
        quality_widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title=f"Model quality ({config.pipeline.metric}) on labelled data",
                left=[self.quality_metric],
                left_annotations=[floor],
                width=12,
            )
        ]
        cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(7),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="Pipeline executions",
                        left=[
                            pipeline_metric(n)
                            for n in ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed")
                        ],
                        width=8,
                    ),
                    cloudwatch.GraphWidget(
                        title=intake_title,
                        left=[
                            queue.metric_approximate_number_of_messages_visible()
                            for queue in intake_queues
                        ],
                        width=8,
                    ),
                    cloudwatch.AlarmStatusWidget(
                        title="Alarms",
                        alarms=[
                            *self.alarms.values(),
                            *endpoint_alarms,
                            intake_alarm,
                            training.evaluation_trigger.dead_letters_alarm,
                            training.job_tagger.dead_letters_alarm,
                        ],
                        width=8,
                    ),
                ],
                *endpoint_rows,
                *drift_rows,
                [
                    *quality_widgets,
                    cloudwatch.GraphWidget(
                        title="Evaluation pipeline executions",
                        left=[
                            cloudwatch.Metric(
                                namespace=PIPELINE_NAMESPACE,
                                metric_name=name,
                                dimensions_map={"PipelineName": config.evaluation_pipeline_name},
                                statistic="Sum",
                                period=Duration.days(1),
                            )
                            for name in (
                                "ExecutionStarted",
                                "ExecutionSucceeded",
                                "ExecutionFailed",
                            )
                        ],
                        width=12,
                    ),
                ],
            ],
        )
