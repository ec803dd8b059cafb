"""S3 "Object Created" events as EventBridge delivers them, built from AWS's documented example.

`DOCUMENTED_OBJECT_CREATED` is the example of the Amazon S3 User Guide ("EventBridge event
message structure", Object Created), copied as published. Tests vary only the fields that
name their own object (bucket, key, size, ETag, version id, sequencer, time); everything
else stays as AWS documents it. The key in particular is put in as it is: EventBridge does
not URL-encode keys (the classic S3 notification format does; our code must not decode).
"""

from __future__ import annotations

import copy
from typing import Any

DOCUMENTED_OBJECT_CREATED: dict[str, Any] = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2021-11-12T00:00:00Z",
    "region": "ca-central-1",
    "resources": ["arn:aws:s3:::amzn-s3-demo-bucket1"],
    "detail": {
        "version": "0",
        "bucket": {"name": "amzn-s3-demo-bucket1"},
        "object": {
            "key": "example-key",
            "size": 5,
            "etag": "b1946ac92492d2347c6235b4d2611184",
            "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            "sequencer": "617f08299329d189",
        },
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "PutObject",
    },
}


def object_created(
    key: str,
    *,
    bucket: str,
    size: int,
    etag: str,
    version_id: str | None,
    sequencer: str,
    time: str,
    account: str,
    region: str,
) -> dict[str, Any]:
    """The documented example for one object of ours; `version_id` None: unversioned bucket
    (the field is absent)."""
    event = copy.deepcopy(DOCUMENTED_OBJECT_CREATED)
    event.update(account=account, region=region, time=time, resources=[f"arn:aws:s3:::{bucket}"])
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["requester"] = account
    obj = event["detail"]["object"]
    obj.update(key=key, size=size, etag=etag, sequencer=sequencer)
    if version_id is None:
        del obj["version-id"]
    else:
        obj["version-id"] = version_id
    return event
