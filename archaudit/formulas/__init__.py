"""Analytic parameter formulas, one module per layer family, all registered in :data:`archaudit.registry.REGISTRY`.

Importing this package registers every family; each family module holds frozen specs, the pure
arithmetic on them, and the adapter that reads a spec off a module.
"""

from . import attention, conv, embedding, hf, linear, norm, recurrent, vision, zero  # noqa: F401  (registration)
