"""The custom resource's logger: a child of the handler's, so every record carries its keys."""

from __future__ import annotations

from aws_lambda_powertools import Logger

SERVICE_NAME = "pipeline-resource"
logger = Logger(service=SERVICE_NAME, child=True)
