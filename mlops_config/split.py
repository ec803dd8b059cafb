"""How Prepare splits a dataset version into train, validation and test: each row placed by a
stable hash of its identity (an id column, or its feature values), or by its time, so a row
never changes split between versions and a champion is never scored on rows it trained on."""

from __future__ import annotations

from typing import Annotated

from pydantic import model_validator

from mlops_config.rules import COLUMN, Number, Section, Text, allowed, field_error

OptionalColumn = Annotated[
    str | None, Text(COLUMN, "a column name (letters, digits, _)", nullable=True)
]
Fraction = Annotated[float, Number(0.05, 0.45)]


class SplitConfig(Section):
    id_column: OptionalColumn = None
    """A column identifying each row (not a feature): the split hashes it. Default: the row's
    feature values."""
    time_column: OptionalColumn = None
    """Split by time instead (numbers or ISO 8601 date-times, not a feature): the oldest rows
    train, the newest test."""
    validation_fraction: Fraction = 0.15
    """Share of rows in the validation split (early stopping, calibration, threshold)."""
    test_fraction: Fraction = 0.15
    """Share of rows in the test split (the gate's evaluation rows)."""

    @model_validator(mode="after")
    def _one_key(self) -> SplitConfig:
        if self.id_column and self.time_column:
            raise field_error(
                "time_column",
                self.time_column,
                allowed(f"with id_column {self.id_column!r} set: split by id or by time, not both"),
            )
        return self
