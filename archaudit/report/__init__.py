"""Renderers: audits in, strings and plain dicts out. They compute nothing and print nothing."""

from .flops import comparison_markdown, flops_json, flops_markdown
from .params import params_json, params_markdown

__all__ = ["comparison_markdown", "flops_json", "flops_markdown", "params_json", "params_markdown"]
