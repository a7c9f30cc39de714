"""archaudit: audit what a PyTorch model contains, what it costs to run, and whether its documentation is true.

The public API is what this module exports; everything else is private and may change.

>>> from torch import nn
>>> import archaudit
>>> archaudit.audit(nn.Linear(768, 3072), "1x128x768").totals()["MACs"]  # 128 tokens x 768 x 3072
301989888
>>> audit = archaudit.audit_params(nn.MultiheadAttention(768, 12))
>>> audit.total          # 4*768*768 + 4*768
2362368
>>> audit.leaf_only_total  # what a leaf-only counter sees: out_proj alone, 768*768 + 768
590592
"""

from .audit import Audit, ModuleRow, audit
from .budgets.check import BudgetExceeded, BudgetResult, assert_budget, check_budget
from .errors import (
    ArchauditError,
    FormulaMismatchError,
    LazyModuleError,
    RegistryError,
    TargetError,
)
from .records import ModelAudit, ModuleRecord, SharedTensor, Status, UnregisteredModule
from .registry import KNOWN_ZERO, REGISTRY, FormulaRegistry, LayerFormula, LayerRule
from .render.dataframe import params_frame
from .report_data import ModelReport, report
from .walker import audit_params

__version__ = "0.1.0"

__all__ = [
    "KNOWN_ZERO",
    "REGISTRY",
    "ArchauditError",
    "Audit",
    "BudgetExceeded",
    "BudgetResult",
    "FormulaMismatchError",
    "FormulaRegistry",
    "LayerFormula",
    "LayerRule",
    "LazyModuleError",
    "ModelAudit",
    "ModelReport",
    "ModuleRecord",
    "ModuleRow",
    "RegistryError",
    "SharedTensor",
    "Status",
    "TargetError",
    "UnregisteredModule",
    "assert_budget",
    "audit",
    "audit_params",
    "check_budget",
    "params_frame",
    "report",
]
