"""Synthetic penguin measurements: the bundled example of a text label and category features.

Shaped like the Palmer penguins table users try first (`species`, `island` as text, bill and
flipper measurements, body mass, `sex` as `female`/`male`, a free-text `comment`), but
GENERATED here, deterministically for a given (rows, seed): no download. The target `sex`
depends on the measurements *within* a species (males are heavier with deeper bills), so a
model needs the `species` category to separate them well; about 2 % of the measurements are
missing, as in the real table. `comment` is free text (a distinct note per row) that schema
inference lists as ignored.

    python -m pipeline_code.penguin_data --rows 3000 --seed 42 --out examples/penguins.csv
    make local-run DATA=examples/penguins.csv TARGET=sex POSITIVE=female
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "sex"
POSITIVE = "female"
BUNDLED = Path(__file__).resolve().parent.parent / "examples" / "penguins.csv"

#: species -> (islands, mean bill length, bill depth, flipper length, body mass) of females;
#: males add MALE_SHIFT's share of each.
SPECIES = {
    "Adelie": (("Torgersen", "Biscoe", "Dream"), 37.3, 17.6, 188.0, 3370.0),
    "Chinstrap": (("Dream",), 46.6, 17.6, 192.0, 3530.0),
    "Gentoo": (("Biscoe",), 45.6, 14.2, 212.0, 4680.0),
}
MALE_SHIFT = np.array([0.08, 0.08, 0.03, 0.17])
SPREAD = np.array([0.06, 0.05, 0.03, 0.08])
MISSING_SHARE = 0.02


def generate(rows: int = 3000, seed: int = 42) -> pd.DataFrame:
    """`rows` penguins; the same arguments always give the same frame."""
    rng = np.random.default_rng(seed)
    names = list(SPECIES)
    species = rng.choice(names, size=rows, p=[0.44, 0.2, 0.36])
    male = rng.random(rows) < 0.5
    island = np.empty(rows, dtype=object)
    measures = np.empty((rows, 4))
    for name, (islands, *means) in SPECIES.items():
        where = species == name
        island[where] = rng.choice(islands, size=int(where.sum()))
        base = np.array(means) * (1 + MALE_SHIFT * male[where][:, None])
        measures[where] = base * (1 + SPREAD * rng.standard_normal((int(where.sum()), 4)))
    frame = pd.DataFrame(
        {
            "species": species,
            "island": island,
            "bill_length_mm": measures[:, 0].round(1),
            "bill_depth_mm": measures[:, 1].round(1),
            "flipper_length_mm": measures[:, 2].round(0),
            "body_mass_g": measures[:, 3].round(-1).astype(np.int64),
            "year": rng.choice([2007, 2008, 2009], size=rows),
            "comment": [f"nest {i} checked" for i in range(rows)],
            TARGET: np.where(male, "male", POSITIVE),
        }
    )
    for column in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm"):
        frame.loc[rng.random(rows) < MISSING_SHARE, column] = np.nan
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic penguin example data.")
    parser.add_argument("--rows", type=int, default=3000, help="(3000)")
    parser.add_argument("--seed", type=int, default=42, help="(42)")
    parser.add_argument("--out", type=Path, default=BUNDLED, help=f"({BUNDLED})")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    generate(args.rows, args.seed).to_csv(args.out, index=False)
    print(f"wrote {args.rows} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
