"""Checking a custom trainer's archive for what the endpoint will run: its `code/` folder and
its category encoding.

A model with category features is served in script mode: the XGBoost container runs the
archive's own `code/inference.py` (pipeline_code/definition/registration.py). Under
`pipeline.trainer = custom` the user's script wrote that archive, so before the challenger is
scored (and so before it can be registered) Evaluate checks that

    code/                       holds exactly the loop's serving files (inference.py,
                                common/__init__.py, common/categories.py, pyproject.toml,
                                _code_backend.py), byte for byte the
                                ones this Evaluate ships: the script cannot get its own code run
                                by the endpoint; present exactly when there is an encoding
    metadata/categories.json    encodes exactly the booster's categorical features (type `c`):
                                no category feature is served as a number or a number as a
                                category; each list in fit_encoding's form (sorted, each value
                                once, canonical text, which is all a request value can become),
                                at most common.categories.MAX_CATEGORIES values
    metadata/model-metadata.json  `feature_names` and `feature_types` exactly the booster's:
                                the endpoint's inference.py builds its DMatrix from them, and
                                XGBoost does not check feature types at predict time, so a
                                category declared `q` there would be served as a number

The encoding's values themselves are the script's (fitted by `common.categories.fit_encoding`
on the train channel, as train.py does): whatever they are, Evaluate scores the challenger
through them exactly as the endpoint will serve it, so a wrong encoding shows in the gate's
metric, not silently in production.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common import categories

CODE_DIR = "code"
INFERENCE_SCRIPT = "inference.py"
CUSTOM_TRAINER = "custom"
#: The folder of Evaluate's code tree holding the loop's train/ step folder (the definition
#: ships it there for a custom trainer with category features: step_code.custom_category_trees),
#: so in the container /opt/ml/processing/input/code/train/. Only there: nothing beside the
#: code tree (another input could be mounted at ../train one day) is ever taken as the reference.
REFERENCE_DIR = "train"
REFERENCE_SCRIPTS = (Path(__file__).resolve().parent / REFERENCE_DIR / INFERENCE_SCRIPT,)


class ServingFilesError(ValueError):
    """The archive's serving files are not the loop's; the message says which and why."""


def expected_serving_files(references: Sequence[Path] | None = None) -> dict[str, bytes]:
    """The `code/` folder a served archive must hold (relative path -> bytes); the loop's
    inference.py is the first of `references` that exists (default REFERENCE_SCRIPTS)."""
    references = REFERENCE_SCRIPTS if references is None else references
    script = next((path for path in references if path.is_file()), None)
    if script is None:
        raise ServingFilesError(
            f"this Evaluate has no copy of the loop's {INFERENCE_SCRIPT} to check the archive's "
            f"{CODE_DIR}/ against (looked in {', '.join(str(p.parent) for p in references)})"
        )
    # the offline start-up install's build files (serving_files.BUILD_FILES: archive name ->
    # its source beside inference.py)
    build = {"pyproject.toml": "serving_pyproject.toml", "_code_backend.py": "_code_backend.py"}
    missing = [source for source in build.values() if not (script.parent / source).is_file()]
    if missing:
        raise ServingFilesError(
            f"this Evaluate has no copy of the loop's {', '.join(missing)} beside "
            f"{script} to check the archive's {CODE_DIR}/ against"
        )
    return {
        INFERENCE_SCRIPT: script.read_bytes(),
        **{name: (script.parent / source).read_bytes() for name, source in build.items()},
        "common/__init__.py": b"",
        "common/categories.py": Path(categories.__file__).read_bytes(),
    }


def check_custom_serving_files(
    root: Path,
    booster: Any,
    encoding: Mapping[str, Sequence[str]],
    metadata: Mapping[str, Any],
    references: Sequence[Path] | None = None,
) -> None:
    """Refuse a custom trainer's unpacked model directory `root` whose serving files are not
    the loop's (see the module docstring); `booster` is its loaded XGBoost booster, `encoding`
    its metadata/categories.json and `metadata` its metadata/model-metadata.json."""
    names, types = _declared_features(booster, metadata)
    categorical = sorted(name for name, kind in zip(names, types, strict=False) if kind == "c")
    if categorical != sorted(encoding):
        raise ServingFilesError(
            f"its booster's categorical features {categorical} are not the features of "
            f"metadata/{categories.CATEGORIES_FILE} {sorted(encoding)}: train every category "
            "feature as categorical (feature type 'c') on the codes of that one encoding"
        )
    for name, values in encoding.items():
        # fit_encoding's form: anything else would never match a request's canonical value,
        # or give two codes one meaning
        if not values or list(values) != sorted(set(values)):
            raise ServingFilesError(
                f"metadata/{categories.CATEGORIES_FILE}: feature {name!r} must list its "
                "categories once each, sorted (common.categories.fit_encoding's form)"
            )
        if len(values) > categories.MAX_CATEGORIES:
            raise ServingFilesError(
                f"metadata/{categories.CATEGORIES_FILE}: feature {name!r} has {len(values)} "
                f"categories, more than {categories.MAX_CATEGORIES} (fit_encoding's limit): an "
                "identifier is not a category"
            )
        odd = [value for value in values if categories.canonical(value) != value]
        if odd:
            raise ServingFilesError(
                f"metadata/{categories.CATEGORIES_FILE}: feature {name!r} has values that are "
                f"not canonical text {odd[:5]}: no request value would ever match them "
                "(fit the encoding with common.categories.fit_encoding on canonical_array)"
            )
    code = root / CODE_DIR
    if not encoding:
        if code.exists():
            raise ServingFilesError(
                f"it has a {CODE_DIR}/ folder but no category feature: only a model with "
                "category features carries serving code (the loop's)"
            )
        return
    if not code.is_dir():
        raise ServingFilesError(
            f"it has category features but no {CODE_DIR}/ folder: write the serving files with "
            "the loop's serving_files.write_serving_files (README: Trainers)"
        )
    expected = expected_serving_files(references)
    found = {
        path.relative_to(code).as_posix(): path
        for path in sorted(code.rglob("*"))
        if path.is_file()  # a __pycache__ too: Python may import a .pyc instead of its .py
    }
    extra = sorted(set(found) - set(expected))
    missing = sorted(set(expected) - set(found))
    changed = sorted(n for n in expected if n in found and found[n].read_bytes() != expected[n])
    if extra or missing or changed:
        raise ServingFilesError(
            f"its {CODE_DIR}/ folder is not the loop's serving code (extra {extra}, missing "
            f"{missing}, changed {changed}): the endpoint runs that folder, so it must be "
            "written by serving_files.write_serving_files, unchanged"
        )


def _declared_features(booster: Any, metadata: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The booster's feature names and types, which metadata/model-metadata.json must repeat
    exactly: the endpoint's inference.py serves with the metadata's, Evaluate scores with the
    booster's."""
    names = list(booster.feature_names or [])
    types = list(booster.feature_types or [])
    if not names or len(types) != len(names):
        raise ServingFilesError(
            "its booster has no feature names and types: train on a DMatrix with "
            "feature_names and feature_types (README: Trainers)"
        )
    for key, value in (("feature_names", names), ("feature_types", types)):
        if metadata.get(key) != value:
            raise ServingFilesError(
                f"metadata/model-metadata.json {key} {metadata.get(key)!r} is not its "
                f"booster's {value!r}: the endpoint serves with the metadata's, so write the "
                f"booster's own (list(booster.{key}))"
            )
    return names, types
