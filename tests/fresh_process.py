"""One fresh interpreter per test worker that imports every archaudit module and audits a small model, and
reports which top-level modules that pulled in. Oracle for the "archaudit never imports X" tests: sys.modules
of a process that nothing else has imported into (a test process has imported everything)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CODE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import torch
    import archaudit
    for info in pkgutil.walk_packages(archaudit.__path__, "archaudit."):
        if not info.name.endswith("__main__"):  # running it is the CLI, not an import
            importlib.import_module(info.name)
    archaudit.audit_params(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.GELU()))
    print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
    """
)


@functools.cache
def top_level_modules_after_importing_archaudit() -> frozenset[str]:
    """Top-level module names in sys.modules once every archaudit module is imported and an audit has run."""
    out = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, check=True, cwd=ROOT)
    found = frozenset(json.loads(out.stdout.strip().splitlines()[-1]))
    assert {"archaudit", "torch"} <= found, found  # the process did import what it was asked to: not a vacuous list
    return found
