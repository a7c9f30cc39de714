"""Renderers: audits in, strings and plain dicts out. They compute nothing and print nothing."""

from .params import params_json, params_markdown

__all__ = ["params_json", "params_markdown"]
