"""Budgets: limits on a model's parameters, MACs, FLOPs and size, checked from Python (:mod:`.check`) or from a
budgets file in CI (:mod:`.file`)."""

from .check import BudgetError, BudgetExceeded, BudgetResult, assert_budget, check_budget

__all__ = ["BudgetError", "BudgetExceeded", "BudgetResult", "assert_budget", "check_budget"]
