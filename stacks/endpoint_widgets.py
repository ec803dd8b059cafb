"""The Monitoring stack's dashboard rows of an endpoint (realtime or serverless serving)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

if TYPE_CHECKING:
    from stacks.serving_stack import ServingStack


def endpoint_widgets(
    serving: ServingStack,
) -> tuple[list[cloudwatch.IAlarm], list[list[cloudwatch.IWidget]], list[list[cloudwatch.IWidget]]]:
    """(the endpoint's alarms, its invocation and latency row, the serverless-only row of cold
    starts and concurrency); all empty in batch serving, which has no endpoint."""
    endpoint = {"EndpointName": serving.endpoint_name, "VariantName": "AllTraffic"}
    serverless_rows: list[list[cloudwatch.IWidget]] = []

    def endpoint_metric(name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map=endpoint,
            statistic=statistic,
            period=Duration.minutes(5),
        )

    endpoint_alarms: list[cloudwatch.IAlarm] = []
    endpoint_rows: list[list[cloudwatch.IWidget]] = []
    if serving.endpoint is not None:
        endpoint_alarms = [serving.endpoint.errors_alarm, serving.endpoint.latency_alarm]
        endpoint_rows.append(
            [
                cloudwatch.GraphWidget(
                    title="Endpoint invocations and errors",
                    left=[endpoint_metric("Invocations", "Sum")],
                    right=[
                        endpoint_metric("Invocation5XXErrors", "Sum"),
                        endpoint_metric("Invocation4XXErrors", "Sum"),
                    ],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="Endpoint latency p99 (microseconds)",
                    left=[
                        endpoint_metric("ModelLatency", "p99"),
                        endpoint_metric("OverheadLatency", "p99"),
                    ],
                    width=12,
                ),
            ]
        )
    if serving.endpoint is not None and serving.endpoint.serverless:
        # metrics only serverless endpoints publish
        serverless_rows.append(
            [
                cloudwatch.GraphWidget(
                    title="Cold starts: model setup time p99 (microseconds)",
                    left=[endpoint_metric("ModelSetupTime", "p99")],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="Concurrent executions / max concurrency",
                    left=[endpoint_metric("ServerlessConcurrentExecutionsUtilization", "Maximum")],
                    left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
                    width=12,
                ),
            ]
        )
    return endpoint_alarms, endpoint_rows, serverless_rows
