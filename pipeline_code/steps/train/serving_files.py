"""What a model with category features carries so that the endpoint serves it as it was trained.

The SageMaker XGBoost container serves a plain model in *algorithm mode*, which reads numbers
only. A model with `category` features is served in *script mode* instead: Train writes, into
the model directory SageMaker packs as `model.tar.gz`,

    metadata/categories.json    the encoding fitted on the train channel (`common.categories`)
    code/inference.py           model_fn / transform_fn (`inference.py`)
    code/common/categories.py   the same canonical-text and encoding code Train and Evaluate use
    code/pyproject.toml         an in-tree build with no requirements (`serving_pyproject.toml`)
    code/_code_backend.py       its stdlib-only backend: the container pip-installs code/ at
                                start-up, with no network (see `_code_backend.py`)

and the model package's container gets `SAGEMAKER_PROGRAM=inference.py` and
`SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code` (pipeline_code/definition/registration.py), so
the code travels inside the archive: no repack step, nothing downloaded by an endpoint with
network isolation.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common import categories
from common.categories import write_encoding
from common.model_files import METADATA_DIR

CATEGORY = "category"
#: Where the serving code goes inside the model directory, and its entry script.
CODE_DIR = "code"
INFERENCE_SCRIPT = "inference.py"
#: What makes `pip install .` of code/ work offline: archive name -> this folder's file.
BUILD_FILES = {"pyproject.toml": "serving_pyproject.toml", "_code_backend.py": "_code_backend.py"}
_HERE = Path(__file__).resolve().parent


def category_features(training_data: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The category features Prepare recorded in the training data (none for an older record)."""
    types = (training_data or {}).get("feature_types") or {}
    return tuple(name for name, kind in types.items() if kind == CATEGORY)


def feature_types(features: Sequence[str], encoding: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """DMatrix arguments: names, and types `c` (categorical, XGBoost's native support) for the
    encoded features, `q` for numbers; categorical support switched on only when needed."""
    types = ["c" if name in encoding else "q" for name in features]
    arguments: dict[str, Any] = {"feature_names": list(features), "feature_types": types}
    if encoding:
        arguments["enable_categorical"] = True
    return arguments


def write_serving_files(
    model_dir: Path, encoding: Mapping[str, Sequence[str]], sklearn_model: bool = False
) -> None:
    """The encoding and the serving code, beside the model (see the module docstring); a
    scikit-learn model (`sklearn_model`) also gets `common/sklearn_predictions.py`."""
    write_encoding(model_dir / METADATA_DIR, encoding)
    code = model_dir / CODE_DIR
    (code / "common").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_HERE / INFERENCE_SCRIPT, code / INFERENCE_SCRIPT)
    for name, source in BUILD_FILES.items():
        shutil.copyfile(_HERE / source, code / name)
    # The modules this process imported: the copies the model was trained and encoded with.
    shutil.copyfile(categories.__file__, code / "common" / "categories.py")
    if sklearn_model:
        from common import sklearn_predictions

        shutil.copyfile(sklearn_predictions.__file__, code / "common" / "sklearn_predictions.py")
    (code / "common" / "__init__.py").write_text("", encoding="utf-8")
