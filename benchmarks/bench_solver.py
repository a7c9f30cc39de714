"""Solver throughput: configurations evaluated per second by the analytic grid, against the rate of building
each configuration as a module (on meta) and calling numel() — both measured in the same run.

    python benchmarks/bench_solver.py [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from archaudit import audit_params
from archaudit.claims.figures import parse_figure
from archaudit.claims.solver import sample_configs, solve
from reference_models.families import amnl_wide


def measure(samples: int = 40) -> dict[str, float]:
    family = amnl_wide()
    solve(family, parse_figure("3,502,849"))  # warm numpy and the family's closures
    runs = [solve(family, parse_figure("3,502,849")) for _ in range(3)]
    best = min(runs, key=lambda r: r.seconds)
    configs = sample_configs(family, samples, seed=1)
    start = time.perf_counter()
    for config in configs:
        with torch.device("meta"):
            model = family.build(**config)
        sum(p.numel() for p in model.parameters())
    build_rate = samples / (time.perf_counter() - start)
    start = time.perf_counter()
    for config in configs:
        with torch.device("meta"):
            audit_params(family.build(**config))
    walk_rate = samples / (time.perf_counter() - start)
    return {
        "configurations": best.configurations,
        "solver_seconds": best.seconds,
        "solver_rate": best.rate,
        "build_numel_rate": build_rate,
        "build_walk_rate": walk_rate,
        "ratio": best.rate / build_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    result = measure()
    print(f"solver: {result['configurations']:,} configurations in {result['solver_seconds']:.2f} s "
          f"= {result['solver_rate']:,.0f} configurations/s")
    print(f"build on meta + numel(): {result['build_numel_rate']:,.0f} configurations/s")
    print(f"build on meta + archaudit walk: {result['build_walk_rate']:,.0f} configurations/s")
    print(f"solver / build+numel: {result['ratio']:,.0f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
