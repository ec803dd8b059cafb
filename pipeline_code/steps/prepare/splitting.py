"""The stratified train/validation/test split, reproducible for a seed, with both classes in
every split."""

from __future__ import annotations

import numpy as np

from dataset_schema import ValidationError

SPLITS = ("train", "validation", "test")


def split_indices(
    y: np.ndarray, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Stratified train/validation/test row indices (each sorted), reproducible for `seed`."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(y.size)
    try:
        rest, test = train_test_split(rows, test_size=test_fraction, stratify=y, random_state=seed)
        train, validation = train_test_split(
            rest,
            test_size=validation_fraction / (1.0 - test_fraction),
            stratify=y[rest],
            random_state=seed,
        )
    except ValueError as error:
        raise ValidationError(
            f"cannot split {y.size} rows into train/validation/test "
            f"({1 - validation_fraction - test_fraction:.0%}/{validation_fraction:.0%}/"
            f"{test_fraction:.0%}) with both classes in each: {error}"
        ) from error
    splits = {"train": train, "validation": validation, "test": test}
    for name, index in splits.items():
        classes = np.unique(y[index])
        if classes.size < 2:
            raise ValidationError(
                f"after the split, the {name} split ({index.size} rows) has only class "
                f"{int(classes[0])}; provide more rows of the rare class "
                f"(now {int(min(y.sum(), y.size - y.sum()))})"
            )
    return {name: np.sort(index) for name, index in splits.items()}
