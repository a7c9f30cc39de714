"""Renderers: audits in, strings and plain dicts out. They compute nothing and print nothing."""

from .claims import claims_json, claims_markdown
from .flops import comparison_markdown, flops_json, flops_markdown
from .params import params_json, params_markdown

__all__ = [
    "claims_json",
    "claims_markdown",
    "comparison_markdown",
    "flops_json",
    "flops_markdown",
    "params_json",
    "params_markdown",
]
