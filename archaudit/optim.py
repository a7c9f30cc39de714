"""The optimizers and precisions a training step is counted for, declared once: their names, how a name is read,
and the element-wise work of one ``step()`` per trainable element (what state each keeps is in
:func:`archaudit.memory.optimizer_state_bytes`)."""

from __future__ import annotations

import enum

from .errors import ArchauditError


class SettingError(ArchauditError, ValueError):
    """An optimizer or precision name that is not one of the choices (the message names them)."""


class Optimizer(str, enum.Enum):
    SGD = "sgd"
    MOMENTUM = "momentum"
    ADAM = "adam"
    ADAMW = "adamw"


class Precision(str, enum.Enum):
    FP32 = "fp32"
    BF16_MIXED = "bf16-mixed"
    FP16_MIXED = "fp16-mixed"


OPTIMIZERS = tuple(m.value for m in Optimizer)
PRECISIONS = tuple(m.value for m in Precision)


def _choice(kind: str, value: object, enum_type: type[Optimizer] | type[Precision]) -> Optimizer | Precision:
    if isinstance(value, enum_type):
        return value
    choices = [m.value for m in enum_type]
    if isinstance(value, str) and value in choices:
        return enum_type(value)
    raise SettingError(f"unknown {kind} {value!r}: one of {', '.join(choices)}")


def parse_optimizer(value: object) -> Optimizer:
    """``"adam"`` -> :attr:`Optimizer.ADAM`; anything else raises :class:`SettingError` naming the choices."""
    found = _choice("optimizer", value, Optimizer)
    assert isinstance(found, Optimizer)
    return found


def parse_precision(value: object) -> Precision:
    """``"bf16-mixed"`` -> :attr:`Precision.BF16_MIXED`; else :class:`SettingError` naming the choices."""
    found = _choice("precision", value, Precision)
    assert isinstance(found, Precision)
    return found


OPS_PER_ELEMENT: dict[Optimizer, int] = {
    # param.add_(grad, alpha=-lr): a multiply and an add
    Optimizer.SGD: 2,
    # buf.mul_(momentum).add_(grad, alpha=1 - dampening): 2; param.add_(buf, alpha=-lr): 2
    Optimizer.MOMENTUM: 4,
    # exp_avg.lerp_(grad, 1 - beta1): 3 (sub, mul, add); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2): 4;
    # denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps): 3; param.addcdiv_(exp_avg, denom, -step): 3
    Optimizer.ADAM: 13,
    # Adam's 13 and the decoupled weight decay param.mul_(1 - lr * weight_decay): 1 (AdamW's default decay is 0.01)
    Optimizer.ADAMW: 14,
}
"""Element-wise operations per trainable parameter element of one ``step()``, read off torch.optim's single-tensor
update (``foreach=False``) with its default arguments (no weight decay for SGD and Adam, no Nesterov, no amsgrad):
every element-wise multiply, add, subtract, divide and square root counts one. Bias corrections are per tensor, not
per element, and are not counted."""
