"""Torch-only equivalents of the timm and torchvision blocks that archaudit/formulas/vision.py has rules for.

torchvision's wheels on the test machine are CUDA-linked and fail to import, and timm needs torchvision, so neither
can be used here. Each class below is written from the upstream source (same constructor arguments, attribute
names, parameters, buffers and forward) and carries the upstream qualified name (``__module__`` and
``__qualname__`` set), so that rules keyed by that name match it exactly as they match the real class. Upstream
files, as read for this (tests/test_vision_rules.py pins each name):

* ``LayerScale``: huggingface/pytorch-image-models, timm/layers/layer_scale.py
* ``Attention``: huggingface/pytorch-image-models, timm/layers/attention.py (moved there from
  timm/models/vision_transformer.py in recent timm)
* ``StochasticDepth``: pytorch/vision, torchvision/ops/stochastic_depth.py
* ``Conv2dNormActivation``: pytorch/vision, torchvision/ops/misc.py (a ``ConvNormActivation``, a Sequential)
* ``ShiftedWindowAttention``: pytorch/vision, torchvision/models/swin_transformer.py
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _upstream(module: str, qualname: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Give a class the upstream qualified name ``module.qualname``."""

    def rename(cls: type[nn.Module]) -> type[nn.Module]:
        cls.__module__ = module
        cls.__qualname__ = qualname
        cls.__name__ = qualname.rpartition(".")[2]
        return cls

    return rename


# --- timm ----------------------------------------------------------------------------------------------------------


@_upstream("timm.layers.layer_scale", "LayerScale")
class LayerScale(nn.Module):
    """Channels-last scale: ``gamma (dim,)``; forward ``x * gamma`` (in place with ``inplace``)."""

    def __init__(self, dim: int, init_values: float = 1e-5, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(self.gamma) if self.inplace else x * self.gamma


@_upstream("timm.layers.attention", "Attention")
class Attention(nn.Module):
    """Multi-head self-attention: ``qkv`` Linear, optional q/k norms over ``head_dim``, optional scale norm over
    ``attn_dim``, ``proj`` Linear; owns no parameter itself. ``fused_attn`` picks scaled_dot_product_attention or
    the explicit ``q @ k^T``, softmax, ``@ v`` path (timm's ``use_fused_attn()`` decides it upstream)."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        attn_head_dim: int | None = None,
        dim_out: int | None = None,
        qkv_bias: bool = False,
        qk_norm: bool = False,
        scale_norm: bool = False,
        proj_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_layer: type[nn.Module] | None = None,
        device: Any = None,
        dtype: Any = None,
        fused_attn: bool = True,  # not upstream's: its use_fused_attn() reads timm's config
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        dim_out = dim_out or dim
        head_dim = attn_head_dim
        if head_dim is None:
            assert dim % num_heads == 0, "dim should be divisible by num_heads"
            head_dim = dim // num_heads
        if qk_norm or scale_norm:
            assert norm_layer is not None, "norm_layer must be provided if qk_norm or scale_norm is True"
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.attn_dim = num_heads * head_dim
        self.scale = head_dim**-0.5
        self.fused_attn = fused_attn

        self.qkv = nn.Linear(dim, self.attn_dim * 3, bias=qkv_bias, **dd)
        self.q_norm = norm_layer(head_dim, **dd) if qk_norm and norm_layer else nn.Identity()
        self.k_norm = norm_layer(head_dim, **dd) if qk_norm and norm_layer else nn.Identity()
        self.attn_drop = nn.Dropout(attn_drop)
        self.norm = norm_layer(self.attn_dim, **dd) if scale_norm and norm_layer else nn.Identity()
        self.proj = nn.Linear(self.attn_dim, dim_out, bias=proj_bias, **dd)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop.p if self.training else 0.0, is_causal=is_causal
            )
        else:
            q = q * self.scale
            attn = q @ k.transpose(-2, -1)
            if is_causal:
                attn = attn + attn.new_full((N, N), float("-inf")).triu_(1)
            elif attn_mask is not None:
                attn = attn + attn_mask
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, self.attn_dim)
        x = self.norm(x)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x


# --- torchvision ---------------------------------------------------------------------------------------------------


def stochastic_depth(input: torch.Tensor, p: float, mode: str, training: bool = True) -> torch.Tensor:
    """Zero the whole input (``"batch"``) or random rows (``"row"``) with probability ``p``, scaled by 1/(1-p)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
    if mode not in ("batch", "row"):
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


@_upstream("torchvision.ops.stochastic_depth", "StochasticDepth")
class StochasticDepth(nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)


@_upstream("torchvision.ops.misc", "ConvNormActivation")
class ConvNormActivation(nn.Sequential):
    """``conv_layer``, then ``norm_layer(out_channels)`` and ``activation_layer()`` where given; bias on the conv
    only without a norm (by default); padding ``(kernel - 1) // 2 * dilation`` by default."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...] = 3,
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str | None = None,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation: int | tuple[int, ...] = 1,
        inplace: bool | None = True,
        bias: bool | None = None,
        conv_layer: Callable[..., nn.Module] = nn.Conv2d,
    ) -> None:
        if padding is None:
            if isinstance(kernel_size, int) and isinstance(dilation, int):
                padding = (kernel_size - 1) // 2 * dilation
            else:
                n = len(kernel_size) if isinstance(kernel_size, Sequence) else len(dilation)  # type: ignore[arg-type]
                ks = tuple(kernel_size) if isinstance(kernel_size, Sequence) else (kernel_size,) * n
                dl = tuple(dilation) if isinstance(dilation, Sequence) else (dilation,) * n
                padding = tuple((ks[i] - 1) // 2 * dl[i] for i in range(n))
        if bias is None:
            bias = norm_layer is None
        layers = [
            conv_layer(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups,
                       bias=bias)
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            params = {} if inplace is None else {"inplace": inplace}
            layers.append(activation_layer(**params))
        super().__init__(*layers)
        self.out_channels = out_channels


@_upstream("torchvision.ops.misc", "Conv2dNormActivation")
class Conv2dNormActivation(ConvNormActivation):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str | None = None,
        groups: int = 1,
        norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[..., nn.Module] | None = nn.ReLU,
        dilation: int | tuple[int, int] = 1,
        inplace: bool | None = True,
        bias: bool | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, norm_layer,
                         activation_layer, dilation, inplace, bias, nn.Conv2d)


def _get_relative_position_bias(table: torch.Tensor, index: torch.Tensor, window_size: list[int]) -> torch.Tensor:
    n = window_size[0] * window_size[1]
    bias = table[index].view(n, n, -1)
    return bias.permute(2, 0, 1).contiguous().unsqueeze(0)


def shifted_window_attention(
    input: torch.Tensor,
    qkv_weight: torch.Tensor,
    proj_weight: torch.Tensor,
    relative_position_bias: torch.Tensor,
    window_size: list[int],
    num_heads: int,
    shift_size: list[int],
    attention_dropout: float = 0.0,
    dropout: float = 0.0,
    qkv_bias: torch.Tensor | None = None,
    proj_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Window attention over ``input (B, H, W, C)``: pad to a multiple of the window, shift cyclically, attend
    within each window (qkv and proj applied with F.linear on the weights, not by calling the Linear children), add
    the relative position bias and the shift mask, reverse it all. (Upstream's v2 cosine-attention branch is left
    out: ShiftedWindowAttentionV2 is not a block this file reproduces.)"""
    B, H, W, C = input.shape
    pad_r = (window_size[1] - W % window_size[1]) % window_size[1]
    pad_b = (window_size[0] - H % window_size[0]) % window_size[0]
    x = F.pad(input, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_H, pad_W, _ = x.shape
    shift_size = list(shift_size)  # upstream edits the caller's list; a copy keeps the module reusable here
    if window_size[0] >= pad_H:
        shift_size[0] = 0
    if window_size[1] >= pad_W:
        shift_size[1] = 0
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(-shift_size[0], -shift_size[1]), dims=(1, 2))
    num_windows = (pad_H // window_size[0]) * (pad_W // window_size[1])
    x = x.view(B, pad_H // window_size[0], window_size[0], pad_W // window_size[1], window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * num_windows, window_size[0] * window_size[1], C)

    qkv = F.linear(x, qkv_weight, qkv_bias)
    qkv = qkv.reshape(x.size(0), x.size(1), 3, num_heads, C // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = q * (C // num_heads) ** -0.5
    attn = q.matmul(k.transpose(-2, -1))
    attn = attn + relative_position_bias

    if sum(shift_size) > 0:
        attn_mask = x.new_zeros((pad_H, pad_W))
        h_slices = ((0, -window_size[0]), (-window_size[0], -shift_size[0]), (-shift_size[0], None))
        w_slices = ((0, -window_size[1]), (-window_size[1], -shift_size[1]), (-shift_size[1], None))
        count = 0
        for h in h_slices:
            for w in w_slices:
                attn_mask[h[0] : h[1], w[0] : w[1]] = count
                count += 1
        attn_mask = attn_mask.view(pad_H // window_size[0], window_size[0], pad_W // window_size[1], window_size[1])
        attn_mask = attn_mask.permute(0, 2, 1, 3).reshape(num_windows, window_size[0] * window_size[1])
        attn_mask = attn_mask.unsqueeze(1) - attn_mask.unsqueeze(2)
        attn_mask = attn_mask.masked_fill(attn_mask != 0, float(-100.0)).masked_fill(attn_mask == 0, float(0.0))
        attn = attn.view(x.size(0) // num_windows, num_windows, num_heads, x.size(1), x.size(1))
        attn = attn + attn_mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, num_heads, x.size(1), x.size(1))

    attn = F.softmax(attn, dim=-1)
    attn = F.dropout(attn, p=attention_dropout)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), C)
    x = F.linear(x, proj_weight, proj_bias)
    x = F.dropout(x, p=dropout)

    x = x.view(B, pad_H // window_size[0], pad_W // window_size[1], window_size[0], window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, pad_H, pad_W, C)
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(shift_size[0], shift_size[1]), dims=(1, 2))
    return x[:, :H, :W, :].contiguous()


@_upstream("torchvision.models.swin_transformer", "ShiftedWindowAttention")
class ShiftedWindowAttention(nn.Module):
    """Owns ``relative_position_bias_table ((2*W0-1)*(2*W1-1), heads)`` and the buffer
    ``relative_position_index``; children ``qkv`` Linear(dim, 3*dim) and ``proj`` Linear(dim, dim)."""

    def __init__(
        self,
        dim: int,
        window_size: list[int],
        shift_size: list[int],
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(window_size) != 2 or len(shift_size) != 2:
            raise ValueError("window_size and shift_size must be of length 2")
        self.window_size = window_size
        self.shift_size = shift_size
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.define_relative_coords()

    def define_relative_coords(self) -> None:
        w0, w1 = self.window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * w0 - 1) * (2 * w1 - 1), self.num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(w0), torch.arange(w1), indexing="ij"))  # 2, W0, W1
        flat = torch.flatten(coords, 1)
        relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()  # T, T, 2
        relative[:, :, 0] += w0 - 1
        relative[:, :, 1] += w1 - 1
        relative[:, :, 0] *= 2 * w1 - 1
        self.register_buffer("relative_position_index", relative.sum(-1).flatten())  # T*T
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def get_relative_position_bias(self) -> torch.Tensor:
        return _get_relative_position_bias(
            self.relative_position_bias_table, self.relative_position_index, self.window_size
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_window_attention(
            x, self.qkv.weight, self.proj.weight, self.get_relative_position_bias(), self.window_size,
            self.num_heads, shift_size=self.shift_size, attention_dropout=self.attention_dropout,
            dropout=self.dropout, qkv_bias=self.qkv.bias, proj_bias=self.proj.bias,
        )
