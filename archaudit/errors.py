"""The library's error tree.

Every error archaudit raises on bad input derives from :class:`ArchauditError` and also from the builtin
that matches it, so callers may catch either. The CLI maps each class to one stderr line and an exit code
(see ``archaudit.cli.EXIT_CODES``).
"""

from __future__ import annotations


class ArchauditError(Exception):
    """Base class of every error archaudit raises on purpose."""


class RegistryError(ArchauditError, TypeError):
    """A formula registration was refused (a key that is not an ``nn.Module`` type, or a duplicate)."""


class TargetError(ArchauditError, LookupError):
    """A TARGET (``module:callable``, ``file.py:callable`` or a reference-model name) could not be resolved."""


class LazyModuleError(ArchauditError, ValueError):
    """A lazy module still holds uninitialised parameters, so nothing about it can be counted."""


class FormulaMismatchError(ArchauditError, AssertionError):
    """An analytic formula disagrees with ``numel()`` on a module of exactly its registered type.

    That is a bug in archaudit (or a PyTorch release that changed a layer), never a property of the model.
    """


class InputSpecError(ArchauditError, ValueError):
    """An ``--input`` shape could not be parsed (the value is named)."""


class ForwardError(ArchauditError, RuntimeError):
    """The model's forward pass failed on the given input shapes; the module path where it failed is named."""
