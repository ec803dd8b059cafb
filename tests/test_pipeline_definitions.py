"""The CDK app's cache of generated pipeline definitions (.build/pipelines/<env>/)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pipeline_code.definition import UNSTAMPED_CODE_COMMIT, stamp_code_commit
from stacks import pipeline_definitions
from stacks.config import load_config
from stacks.pipeline_definitions import prune_generations
from tests.conftest import assembly_dir


def test_pipeline_generations_are_pruned_to_the_newest(tmp_path: Path) -> None:
    generations = [tmp_path / f"gen{i}" for i in range(5)]
    for age, generation in enumerate(reversed(generations)):
        generation.mkdir()
        os.utime(generation, (1_000_000 - age, 1_000_000 - age))  # gen4 newest
    staging = tmp_path / "gen9.tmp-abc"  # another process's generation in progress
    staging.mkdir()
    prune_generations(tmp_path, generations[0], keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen0", "gen3", "gen4", "gen9.tmp-abc"]


def test_a_generation_used_in_the_last_minutes_is_never_pruned(tmp_path: Path) -> None:
    # Many variants are synthesized in parallel: a generation another worker has just stamped
    # (or reused) must survive a prune by this one, however many newer ones exist.
    old, recent, current = tmp_path / "old", tmp_path / "recent", tmp_path / "current"
    for generation in (old, recent, current):
        generation.mkdir()
    os.utime(old, (1_000_000, 1_000_000))
    prune_generations(tmp_path, current, keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "recent"]


# A training definition as SageMaker's pipeline definition format spells it (Parameters with
# Name/Type/DefaultValue, references as {"Get": "Parameters.<Name>"}), as the generator writes
# it: canonical JSON, sorted keys, indent 2.
UNSTAMPED_DEFINITION = {
    "Version": "2020-12-01",
    "Metadata": {},
    "Parameters": [
        {"Name": "InputDataUri", "Type": "String"},
        {"Name": "CodeCommit", "Type": "String", "DefaultValue": UNSTAMPED_CODE_COMMIT},
        {"Name": "NumRound", "Type": "Integer", "DefaultValue": 300},
    ],
    "Steps": [
        {
            "Name": "Register",
            "Type": "RegisterModel",
            "Arguments": {"MetadataProperties": {"CommitId": {"Get": "Parameters.CodeCommit"}}},
        }
    ],
}


def canonical(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_stamping_sets_the_code_commit_default_and_nothing_else() -> None:
    stamped = stamp_code_commit(canonical(UNSTAMPED_DEFINITION), "0123abcd4567-dirty")
    expected = json.loads(json.dumps(UNSTAMPED_DEFINITION))
    expected["Parameters"][1]["DefaultValue"] = "0123abcd4567-dirty"
    assert stamped == canonical(expected)  # byte for byte what the generator writes
    with pytest.raises(ValueError, match="CodeCommit defaults to '0123abcd4567-dirty'"):
        stamp_code_commit(stamped, "another")  # never stamps over a real commit
    evaluation = {"Version": "2020-12-01", "Parameters": [{"Name": "ModelPackageArn",
                  "Type": "String", "DefaultValue": ""}], "Steps": []}  # fmt: skip
    assert stamp_code_commit(canonical(evaluation), "0123abcd4567") == canonical(evaluation)


def _code_commit_default(definition_file: Path) -> Any:
    parameters = json.loads(definition_file.read_text())["Parameters"]
    return {p["Name"]: p.get("DefaultValue") for p in parameters}.get("CodeCommit")


@pytest.mark.xdist_group("cdk")  # the worker that generates dev's definitions for the synths
def test_a_new_commit_is_stamped_into_the_cached_definitions_without_regenerating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_config("dev")
    monkeypatch.setattr(pipeline_definitions, "code_commit", lambda: "1111aaaa2222")
    first = pipeline_definitions.generate_pipelines(config)

    def no_generator(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the generator ran again: {args}")

    monkeypatch.setattr(pipeline_definitions.subprocess, "run", no_generator)
    monkeypatch.setattr(pipeline_definitions, "code_commit", lambda: "3333bbbb4444-dirty")
    second = pipeline_definitions.generate_pipelines(config)

    assert second.directory == first.directory  # the same generation, no new one
    assert _code_commit_default(first.definition_file("training")) == "1111aaaa2222"
    assert _code_commit_default(second.definition_file("training")) == "3333bbbb4444-dirty"
    assert _code_commit_default(second.definition_file("evaluation")) is None
    for generated in (first, second):
        for key in ("training", "evaluation"):
            text = generated.definition_file(key).read_bytes()
            assert UNSTAMPED_CODE_COMMIT.encode() not in text
            assert generated.definition_sha256(key) == hashlib.sha256(text).hexdigest()
    # apart from the stamp, the same definition
    unstamped = json.loads(first.definition_file("training").read_text())
    unstamped["Parameters"] = [
        {**p, "DefaultValue": "3333bbbb4444-dirty"} if p["Name"] == "CodeCommit" else p
        for p in unstamped["Parameters"]
    ]
    assert canonical(unstamped) == second.definition_file("training").read_text()


@pytest.mark.xdist_group("cdk")
def test_the_synthesized_definitions_carry_the_checkouts_commit(dev: dict[str, Any]) -> None:
    """What CloudFormation gets: the definition asset the custom resource names (by SHA-256)
    in the cloud assembly has the checkout's commit as CodeCommit's default."""
    assets = {
        hashlib.sha256(path.read_bytes()).hexdigest(): path
        for path in Path(assembly_dir("dev")).glob("asset.*.json")
    }
    resources = dev["training"].to_json()["Resources"].values()
    pipelines = {
        r["Properties"]["PipelineName"]: assets[r["Properties"]["DefinitionSha256"]]
        for r in resources
        if r["Type"] == "Custom::SageMakerPipeline"
    }
    commit = pipeline_definitions.code_commit()
    assert commit != UNSTAMPED_CODE_COMMIT  # a commit id, "-dirty" or "unknown" (no git)
    assert _code_commit_default(pipelines["mlops-loop-dev-training"]) == commit
    assert _code_commit_default(pipelines["mlops-loop-dev-evaluation"]) is None
    for path in pipelines.values():
        assert UNSTAMPED_CODE_COMMIT not in path.read_text()


@pytest.mark.xdist_group("cdk")
def test_several_environments_are_generated_by_one_generator_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = [load_config("dev"), load_config("prod")]
    expected = [pipeline_definitions.generate_pipelines(config) for config in configs]
    monkeypatch.setattr(pipeline_definitions, "BUILD_DIR", tmp_path)  # nothing generated yet
    commands = []
    run = pipeline_definitions.subprocess.run

    def counted(command: list[str], **kwargs: Any) -> Any:
        if "pipeline_code.generate" in command:  # not code_commit()'s git calls
            commands.append(command)
        return run(command, **kwargs)

    monkeypatch.setattr(pipeline_definitions.subprocess, "run", counted)
    generated = pipeline_definitions.generate_all_pipelines(configs)

    assert len(commands) == 1 and commands[0].count("--settings") == 2
    for one, batched in zip(expected, generated, strict=True):
        assert batched.directory.parent.parent == tmp_path
        for key in ("training", "evaluation"):
            definition = batched.definition_file(key).read_bytes()
            assert definition == one.definition_file(key).read_bytes()
            assert batched.definition_sha256(key) == one.definition_sha256(key)
    assert pipeline_definitions.generate_all_pipelines(configs) == generated  # cached: no run
    assert len(commands) == 1
