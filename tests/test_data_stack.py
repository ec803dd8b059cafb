"""The stateful layer: what users rely on for their data's safety."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.data_stack import PINNED_LOGICAL_IDS

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")


def _resource(template: Template, logical_id: str) -> dict[str, Any]:
    return template.to_json()["Resources"][logical_id]


def test_stateful_logical_ids_are_pinned(dev: dict[str, Template]) -> None:
    resources = dev["data"].to_json()["Resources"]
    for logical_id, kind in PINNED_LOGICAL_IDS.items():
        assert resources[logical_id]["Type"] == kind, logical_id


def test_keys_rotate(dev: dict[str, Template]) -> None:
    for key in ("DataKey", "ArtifactKey", "OperationsKey"):
        assert _resource(dev["data"], key)["Properties"]["EnableKeyRotation"] is True, key


def test_data_and_artifact_buckets_are_kms_encrypted_versioned_and_private(
    dev: dict[str, Template],
) -> None:
    for logical_id, key in (("DataBucket", "DataKey"), ("ArtifactBucket", "ArtifactKey")):
        props = _resource(dev["data"], logical_id)["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
            "Fn::GetAtt": [key, "Arn"]
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
        noncurrent = [
            r
            for r in props["LifecycleConfiguration"]["Rules"]
            if "NoncurrentVersionExpiration" in r
        ]
        assert noncurrent and noncurrent[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30


def test_every_bucket_denies_plain_http(dev: dict[str, Template]) -> None:
    for logical_id in ("DataBucket", "ArtifactBucket", "AccessLogBucket"):
        dev["data"].has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": logical_id},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_data_bucket_sends_events_to_eventbridge(dev: dict[str, Template]) -> None:
    dev["data"].has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": {"Ref": "DataBucket"},
            "NotificationConfiguration": {"EventBridgeConfiguration": {}},
        },
    )


def test_captured_traffic_expires(dev: dict[str, Template]) -> None:
    rules = _resource(dev["data"], "DataBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    capture = [r for r in rules if r.get("Prefix") == "capture/"]
    assert capture and capture[0]["ExpirationInDays"] == 90


def test_model_package_group_name_and_tags(dev: dict[str, Template]) -> None:
    props = _resource(dev["data"], "ModelPackageGroup")["Properties"]
    assert props["ModelPackageGroupName"] == "mlops-loop-dev-models"
    assert {"Key": "environment", "Value": "dev"} in props["Tags"]
    assert {"Key": "project", "Value": "mlops-loop"} in props["Tags"]


def test_topic_is_encrypted_and_subscribes_configured_emails(prod: dict[str, Template]) -> None:
    topic = _resource(prod["data"], "NotificationTopic")["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["OperationsKey", "Arn"]}
    emails = sorted(
        r["Properties"]["Endpoint"]
        for r in prod["data"].to_json()["Resources"].values()
        if r["Type"] == "AWS::SNS::Subscription"
    )
    assert emails == ["ml-team@example.com", "oncall@example.com"]


def test_prod_retains_every_stateful_resource(prod: dict[str, Template]) -> None:
    resources = prod["data"].to_json()["Resources"]
    for logical_id in PINNED_LOGICAL_IDS:
        assert resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id
    assert not [r for r in resources.values() if r["Type"] == "Custom::S3AutoDeleteObjects"]


def test_dev_destroys_cleanly(dev: dict[str, Template]) -> None:
    resources = dev["data"].to_json()["Resources"]
    for logical_id in PINNED_LOGICAL_IDS:
        assert resources[logical_id]["DeletionPolicy"] == "Delete", logical_id
    emptied = {
        r["Properties"]["BucketName"]["Ref"]
        for r in resources.values()
        if r["Type"] == "Custom::S3AutoDeleteObjects"
    }
    assert emptied == {"DataBucket", "ArtifactBucket", "AccessLogBucket"}
