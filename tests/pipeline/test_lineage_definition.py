"""What the definitions carry for integrity and lineage, checked against their counterparts:

* Prepare and Validate read the run's version manifest from where the trigger writes it, and
  prepare.py gets it in the argument it checks the input with;
* Register's CustomerMetadataProperties stay within the registry's pattern and length for any
  name the trigger accepts (`%`, `#`, `(`, unicode, very long names), as botocore's
  CreateModelPackage model states them;
* the SHA-256 Evaluate writes reaches the registry under the key the deployer verifies: a
  package registered as the definition says passes the deployer's check, an altered artifact
  does not.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import regex
from moto import mock_aws

from pipeline_code.definition import contract
from pipeline_code.steps import load
from tests.lambda_loader import load_lambda_module
from tests.pipeline.generated import DEPLOY_VALUES, Run, resolved, substituted, validate_request
from tests.steps import SCHEMA_JSON, small_frame, write

slow = pytest.mark.slow  # the generator runs (about 5 s, once per session)

prepare = load("prepare")
evaluate = load("evaluate")
train = load("train")
verify_inputs = load("prepare", "verify_inputs")
evaluation_contract = load("evaluate", "evaluation_contract")

DIGEST = "4d" * 32
BUCKET = DEPLOY_VALUES["ArtifactBucket"]
# Names the trigger accepts (lambdas/start_training/dataset_names.py) that the registry's
# metadata pattern does not: every one must still register.
NAMES = [
    "sales/50% off",
    "sales/#1 (final)",
    "q'3/it's, done!*",
    "ventes/été 2026 (brut)",
    "2026-11-22T03:00:00+00:00/a=b&c;d",
    "d/" + "é" * 250,  # its own label; InputDataUri beyond 256 characters
]


def _trigger_parameters(dataset_version: str) -> dict[str, str]:
    """What the start-training Lambda passes for a version landed under this name."""
    runs = load_lambda_module("start_training", "trigger_runs")
    input_uri = f"s3://fraud-dev-data/landing/{dataset_version}/"
    return runs.run_parameters(input_uri, dataset_version, DIGEST)


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for nested in step["Arguments"].get(branch, []):
                found[nested["Name"]] = nested
    return found


def _values(run: Run, **given: str) -> dict[str, Any]:
    defaults = {p["Name"]: p.get("DefaultValue") for p in run.definition["Parameters"]}
    return defaults | {"ChampionModelPackageArn": "none"} | given


def _register_request(run: Run, values: dict[str, Any]) -> dict[str, Any]:
    register = _steps(json.loads(substituted(run.definition_text)))["Register"]
    request: dict[str, Any] = resolved(register["Arguments"], values)
    return request


def _metadata_pattern(part: str) -> Any:
    """The registry's pattern for CustomerMetadataProperties keys or values, from botocore's
    service model (AWS writes it as `(...)${1,256}`: the group, anchored, then the length)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateModelPackage").input_shape
    metadata = getattr(shape.members["CustomerMetadataProperties"], part).metadata
    body = regex.sub(r"\$\{\d+,\d+\}$", "", metadata["pattern"])
    return regex.compile(body), metadata["min"], metadata["max"]


def metadata_violations(metadata: dict[str, str]) -> list[str]:
    keys, key_min, key_max = _metadata_pattern("key")
    values, value_min, value_max = _metadata_pattern("value")
    found = []
    for key, value in metadata.items():
        if not (key_min <= len(key) <= key_max and keys.fullmatch(key)):
            found.append(f"key {key!r}")
        if not isinstance(value, str) or not (
            value_min <= len(value) <= value_max and values.fullmatch(value)
        ):
            found.append(f"{key}={str(value)[:60]!r}")
    return found


# --------------------------------------------------------------------- the version manifest


@slow
@pytest.mark.parametrize("pipeline", ["definition", "evaluation"])
def test_prepare_and_validate_read_the_manifest_the_trigger_writes(
    baseline: Run, pipeline: str
) -> None:
    definition = json.loads(substituted(getattr(baseline, f"{pipeline}_text")))
    step = _steps(definition)["Prepare" if pipeline == "definition" else "Validate"]
    values = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    values |= {"DataDigest": DIGEST, "InputDataUri": "s3://d/landing/a/b/"}
    args = resolved(step["Arguments"], values)
    [manifest] = [i["S3Input"] for i in args["ProcessingInputs"] if i["InputName"] == "manifest"]
    trigger_config = load_lambda_module("start_training", "trigger_config")
    written = load_lambda_module("start_training", "version_manifest").manifest_key(
        trigger_config.DEFAULT_MANIFEST_PREFIX, DIGEST
    )
    assert manifest["S3Uri"] == f"s3://{BUCKET}/{written}"
    assert written == verify_inputs.manifest_key(DIGEST)
    assert contract.VERSION_MANIFEST_PREFIX == verify_inputs.MANIFEST_PREFIX
    parsed = prepare.parse_args(args["AppSpecification"]["ContainerArguments"])
    assert (parsed.manifest_dir, parsed.data_digest) == (manifest["LocalPath"], DIGEST)


# ------------------------------------------------------------------ metadata the registry takes


@slow
@pytest.mark.parametrize("name", NAMES)
def test_register_takes_any_name_the_trigger_accepts(baseline: Run, name: str) -> None:
    given = _trigger_parameters(name)
    request = _register_request(baseline, _values(baseline, **given))
    validate_request("CreateModelPackage", request)
    metadata = request["CustomerMetadataProperties"]
    assert metadata_violations(metadata) == []
    assert metadata["version_manifest_uri"] == f"s3://{BUCKET}/dataset-manifests/{DIGEST}.json"
    assert metadata["dataset_version"] == given["DatasetVersion"]


@slow
def test_the_metadata_check_would_catch_the_raw_input_uri(baseline: Run) -> None:
    """The check above can fail: the raw InputDataUri it replaced breaks the pattern."""
    given = _trigger_parameters(NAMES[1])
    assert metadata_violations({"input_data_uri": given["InputDataUri"]}) != []
    assert metadata_violations({"input_data_uri": "s3://b/landing/" + "x" * 300}) != []


@slow
def test_every_package_is_registered_pending_manual_approval(baseline: Run) -> None:
    parameters = {p["Name"] for p in baseline.definition["Parameters"]}
    assert "ModelApprovalStatus" not in parameters
    for run_definition in (baseline.definition_text, baseline.evaluation_text):
        assert "Parameters.ModelApprovalStatus" not in run_definition
    request = _register_request(baseline, _values(baseline, **_trigger_parameters("a/b")))
    assert request["ModelApprovalStatus"] == contract.REGISTERED_APPROVAL_STATUS
    assert "ModelLifeCycle" not in request


# ------------------------------------------------- the artifact digest, end to end to the deployer


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prepare -> train -> evaluate on 2,000 rows, as the pipeline runs them; Evaluate reads
    the training job's model.tar.gz as its `model` input."""
    root = tmp_path_factory.mktemp("contract")
    write(small_frame(2000, seed=4), root / "in" / "data.csv")
    argv = ["--input-dir", str(root / "in"), "--output-dir", str(root), "--schema", SCHEMA_JSON]
    assert prepare.main(argv) == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SM_CHANNEL_TRAIN", str(root / "train"))
        patch.setenv("SM_CHANNEL_VALIDATION", str(root / "validation"))
        patch.setenv("SM_MODEL_DIR", str(root / "model"))
        fast = ["--num_round", "10", "--max_depth", "3", "--checkpoint_dir", str(root / "ck")]
        assert train.main(fast) == 0
    import tarfile

    (root / "job").mkdir()
    with tarfile.open(root / "job" / "model.tar.gz", "w:gz") as tar:
        for item in sorted((root / "model").iterdir()):
            tar.add(item, arcname=item.name)
    argv = ["--model-dir", str(root / "job"), "--test-dir", str(root / "test")]
    argv += ["--output-dir", str(root / "evaluation"), "--bootstrap-samples", "50"]
    assert evaluate.main([*argv, "--champion-model-package-arn", "none"]) == 0
    return root


def _json_gets(node: Any, report: dict[str, Any]) -> Any:
    """Resolve Evaluate's JsonGet expressions against its real evaluation.json."""
    if isinstance(node, list):
        return [_json_gets(item, report) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Std:JsonGet"}:
        value: Any = report
        for part in node["Std:JsonGet"]["Path"].split("."):
            value = value[part]
        return value
    return {key: _json_gets(value, report) for key, value in node.items()}


@slow
def test_a_package_registered_as_the_definition_says_passes_the_deployers_check(
    baseline: Run, trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    integrity = load_lambda_module("deploy_model", "model_deployer.integrity")
    report = json.loads((trained / "evaluation" / evaluation_contract.EVALUATION_FILE).read_text())
    register = _steps(json.loads(substituted(baseline.definition_text)))["Register"]
    arguments = _json_gets(copy.deepcopy(register["Arguments"]), report)
    key = "pipelines/fraud-dev-training/training/pipelines-abc-Train-x/output/model.tar.gz"
    request = resolved(arguments, _values(baseline, **_trigger_parameters("sales/50% off")))
    request["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = f"s3://{BUCKET}/{key}"
    validate_request("CreateModelPackage", request)
    assert metadata_violations(request["CustomerMetadataProperties"]) == []
    package = {
        "ModelPackageArn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/g/1",
        "InferenceSpecification": request["InferenceSpecification"],
        "CustomerMetadataProperties": request["CustomerMetadataProperties"],
    }
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        s3.upload_file(str(trained / "job" / "model.tar.gz"), BUCKET, key)
        prefix = "pipelines/fraud-dev-training/training/"
        digest = integrity.verify_model_artifact(s3, package, bucket=BUCKET, prefix=prefix)
        assert digest == report["lineage"]["model_artifact_sha256"]
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"a model swapped in after registration")
        with pytest.raises(integrity.IntegrityError, match="it changed after registration"):
            integrity.verify_model_artifact(s3, package, bucket=BUCKET, prefix=prefix)
