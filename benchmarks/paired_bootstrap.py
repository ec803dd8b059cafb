"""Benchmark: Evaluate's paired bootstrap (steps/evaluate/paired_bootstrap.py) for two
models at a given test-split size: milliseconds per bootstrap sample to draw the resampling
counts and to score both models under them, and the scorers' setup once.

    python -m benchmarks.paired_bootstrap                          # 150,000 rows, 100 samples
    python -m benchmarks.paired_bootstrap --rows 1500000 --samples 50
    python -m benchmarks.paired_bootstrap --evaluate-dir DIR   # another version of evaluate/

The scores are synthetic (5 % positives, the second model noisier); the per-sample costs
depend on the rows, not on the values. Evaluate draws `--bootstrap-samples` (1000 by default)
samples, so its bootstrap takes about 1000 x (draw + score) plus the setup.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "pipeline_code" / "steps"


def measure(rows: int, samples: int, evaluate_dir: Path) -> dict[str, float]:
    """Setup seconds, and draw and score milliseconds per sample (two models)."""
    sys.path[:0] = [str(evaluate_dir), str(STEPS)]
    import paired_bootstrap

    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.05).astype(np.float64)
    scores = [np.clip(y * 0.3 + rng.random(rows) * noise, 0, 1) for noise in (0.7, 0.9)]
    started = time.perf_counter()
    scorers = [paired_bootstrap.BootstrapScorer(y, p) for p in scores]
    setup = time.perf_counter() - started
    draw = score = 0.0
    started = time.perf_counter()
    for weights in paired_bootstrap.bootstrap_weights(rows, samples, 7):
        drawn = time.perf_counter()
        draw += drawn - started
        for scorer in scorers:
            scorer.score(weights)
        started = time.perf_counter()
        score += started - drawn
    return {
        "setup_s": setup,
        "draw_ms": draw / samples * 1000,
        "score_ms": score / samples * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000, help="test-split rows (150,000)")
    parser.add_argument("--samples", type=int, default=100, help="bootstrap samples (100)")
    parser.add_argument("--evaluate-dir", type=Path, default=STEPS / "evaluate")
    args = parser.parse_args(argv)
    result = measure(args.rows, args.samples, args.evaluate_dir)
    per_sample = result["draw_ms"] + result["score_ms"]
    print(
        f"{args.rows:,} rows, {args.samples} samples: setup {result['setup_s']:.2f} s, "
        f"draw {result['draw_ms']:.1f} ms + score {result['score_ms']:.1f} ms per sample "
        f"(1000 samples: about {per_sample + result['setup_s']:.0f} s)"
    )
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
