"""The pipeline's step code: one folder per step and the `common` package the steps share.

`prepare/`, `train/` and `evaluate/` each hold an entry script of that name and the modules it
uses. Each folder is uploaded together with `common/` as one source directory (addressed by its
content hash: see :mod:`pipeline_code.definition.step_code`), and the container runs the entry
script from there (`python3 prepare.py`), so the step's modules and `common` import by bare
name. Step code runs in the SageMaker XGBoost 3.0-5 image (Python 3.10, numpy, pandas, pyarrow,
scikit-learn, xgboost): it imports nothing from this repository outside this folder.

:func:`load` gives this process the container's view, for the local run and the tests. Module
names are unique across the step folders and `common` (a test pins it), so every step can be
loaded into one process.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

STEPS_DIR = Path(__file__).resolve().parent
STEPS = ("prepare", "train", "evaluate")
# Batch serving's scoring pipeline (published only in batch mode, so the training pipeline's
# code store and its hashes do not depend on it).
SCORING_STEPS = ("score",)
# The training step of `pipeline.trainer = sklearn` (published only for that trainer, so the
# XGBoost pipeline's code store and hashes do not depend on it); it also runs train/'s modules.
TRAINER_STEPS = ("train_sklearn",)
COMMON = "common"


def load(step: str, module: str | None = None) -> ModuleType:
    """Import `<step>/<module>.py` (default: the entry script `<step>.py`) by its bare name, as
    the container does; the step's folder and `common` become importable in this process.
    `step` may be `common` too: `load("common", "failure")` is `common/failure.py`.

    Raises:
        ValueError: `step` is not one of :data:`STEPS` or :data:`COMMON`.
    """
    known = (*STEPS, *SCORING_STEPS, *TRAINER_STEPS, COMMON)
    if step not in known:
        raise ValueError(f"step {step!r} is not allowed: one of {', '.join(known)}")
    folders = [STEPS_DIR] if step == COMMON else [STEPS_DIR, STEPS_DIR / step]
    for folder in folders:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    if step == COMMON:
        return importlib.import_module(f"{COMMON}.{module}" if module else COMMON)
    return importlib.import_module(module or step)
