"""Hugging Face ``transformers`` layers: GPT-2's ``Conv1D``, the RMSNorm family, the activation modules.

Every rule here is keyed by the class's qualified name (``"transformers.pytorch_utils.Conv1D"``), so declaring
them imports nothing: archaudit does not depend on transformers, and a user without it pays nothing. The adapters
read attributes off the module only (its ``weight`` and ``bias`` tensors), never a transformers type.
tests/test_hf_rules.py checks each name against the installed classes, so a rename upstream fails a test rather
than silently matching nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from ..records import Call, MacCount
from ..registry import REGISTRY
from .linear import LinearSpec, linear_macs, linear_params
from .norm import ShapeNormSpec, _norm_call, _shape_norm_expr, shape_norm_params
from .zero import _activation_call


def _tensor(m: nn.Module, name: str) -> torch.Tensor:
    """``m.<name>`` as a tensor; a clear error where a module of the named class holds something else."""
    value = getattr(m, name, None)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(m).__qualname__}.{name} is not a tensor ({value!r}): not the layout this rule reads")
    return value


# --- Conv1D: a Linear whose weight is stored transposed ----------------------------------------------------------

CONV1D = "transformers.pytorch_utils.Conv1D"
"""GPT-2's projection: ``weight (nx, nf)``, ``bias (nf,)``; forward is ``addmm(bias, x.view(-1, nx), weight)``."""


def conv1d_spec(m: nn.Module) -> LinearSpec:
    """Widths from the weight's shape ``(nx, nf)``: in ``nx``, out ``nf``."""
    nx, nf = _tensor(m, "weight").shape
    return LinearSpec(nx, nf, getattr(m, "bias", None) is not None)


def _conv1d_expr(s: LinearSpec) -> str:
    return f"{s.in_features}*{s.out_features}" + (f" + {s.out_features}" if s.bias else "")


def _conv1d_call(m: nn.Module, call: Call) -> MacCount:
    """Every row of the last axis (``tokens = numel / nx``) through the ``nx x nf`` weight: ``tokens*nx*nf`` MACs,
    and one bias add per output element, ``tokens*nf``."""
    return linear_macs(conv1d_spec(m), call.input)


REGISTRY.rule(
    CONV1D, family="hf_conv1d", spec=conv1d_spec, params=linear_params, expression=_conv1d_expr, macs=_conv1d_call
)


# --- the RMSNorm family: a scale over the last axis, no shift ----------------------------------------------------

RMS_NORMS = (
    "transformers.models.llama.modeling_llama.LlamaRMSNorm",
    "transformers.models.mistral.modeling_mistral.MistralRMSNorm",
    "transformers.models.qwen2.modeling_qwen2.Qwen2RMSNorm",
    "transformers.models.gemma.modeling_gemma.GemmaRMSNorm",  # scales by (1 + weight): the same parameters
    "transformers.models.t5.modeling_t5.T5LayerNorm",
)


def hf_rms_norm_spec(m: nn.Module) -> ShapeNormSpec:
    """``weight (hidden,)`` and nothing else: the normalised shape is the weight's."""
    return ShapeNormSpec(tuple(_tensor(m, "weight").shape), True, False)


REGISTRY.rule(
    *RMS_NORMS,
    family="hf_rmsnorm",
    spec=hf_rms_norm_spec,
    params=shape_norm_params,
    expression=_shape_norm_expr,
    macs=_norm_call,
)


# --- activations: no parameters, one element through the non-linearity per input element -------------------------

ACTIVATIONS = (
    "transformers.activations.NewGELUActivation",
    "transformers.activations.GELUActivation",
    "transformers.activations.FastGELUActivation",
    "transformers.activations.QuickGELUActivation",
    "transformers.activations.SiLUActivation",
)

REGISTRY.zero(*ACTIVATIONS, family="hf_activation", macs=_activation_call)
