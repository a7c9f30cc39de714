"""The cost commands beyond one forward pass, end to end through ``archaudit.cli.main``: ``flops --training``,
``flops --vary``, ``memory`` and ``diff`` (the modules behind them have their own property tests:
test_training.py, test_polynomial.py, test_memory.py, test_diff.py, test_estimates.py)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from archaudit.cli import EXIT_CHECK_FAILED, EXIT_OK
from archaudit.inputs import parse_inputs
from archaudit.macs import audit_macs
from archaudit.targets import build_target
from cli_run import refused, run
from torch.utils.flop_counter import FlopCounterMode

TINY_ENCODER = '''
import torch
from torch import nn


class Tiny(nn.Module):
    """A token embedding, two encoder layers and a head tied to the embedding: a transformer to estimate."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(64, 16)
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 64, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids)))


def build():
    return Tiny()
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tiny") / "tiny.py"
    path.write_text(TINY_ENCODER, encoding="utf-8")
    return f"{path}:build"


def json_of(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, *argv)
    assert code == EXIT_OK, err
    return json.loads(out)


# ----------------------------------------------------------------------------------------------------- --training


def test_training_json_matches_flop_counter_on_a_whole_model(capsys):
    """Oracle: FlopCounterMode on meta around forward and ``loss.backward()`` of amnl-compact (Conv1d, a BiLSTM,
    MultiheadAttention, Linear heads), divided by 2, against the CLI's training total."""
    out = json_of(capsys, "flops", "amnl-compact", "--training", "--format", "json")
    training = out["training"]
    assert training["forward"] == out["macs"]  # the forward of the step is the forward pass the flops table counts
    assert training["total"] == training["forward"] + training["backward"]
    assert training["backward"] == training["backward_input"] + training["backward_weight"]
    model = build_target("amnl-compact", device="meta").model
    with FlopCounterMode(display=False) as counter:
        outputs = model(torch.empty(1, 30, 17, device="meta"))
        sum(o.sum() for o in (outputs if isinstance(outputs, tuple) else (outputs,))).backward()
    assert 2 * training["total"] == counter.get_total_flops()
    assert out["estimates"] is None  # a CNN-BiLSTM is no transformer: no estimate is guessed


def test_training_markdown_and_estimates_for_a_transformer(capsys, tiny):
    code, out, err = run(capsys, "flops", tiny, "--input", "1x32:int64", "--training", "--optimizer", "sgd")
    assert code == EXIT_OK, err
    assert "# Training step:" in out and "optimizer sgd" in out and "(sgd: 2 per trainable element)" in out
    assert "## The quoted estimates, audited" in out
    data = json_of(capsys, "flops", tiny, "--input", "1x32:int64", "--training", "--format", "json")
    estimates = data["estimates"]
    assert estimates["dimensions"]["n_layer"] == 2 and estimates["dimensions"]["d_model"] == 16
    forward = 2 * data["training"]["forward"]  # FLOPs
    for estimate in estimates["estimates"]:
        if estimate["pass"] == "forward":
            assert estimate["exact_flops"] == forward
        if estimate["exact_flops"]:
            assert estimate["relative_error"] == pytest.approx(
                (estimate["value_flops"] - estimate["exact_flops"]) / estimate["exact_flops"]
            )


def test_optimizer_without_training_is_refused(capsys):
    assert "--optimizer is for --training" in refused(capsys, "flops", "amnl-compact", "--optimizer", "adam")


# ------------------------------------------------------------------------------------------------------- --vary


def test_vary_predicts_a_size_it_was_not_fitted_on(capsys):
    """Oracle: audit_macs at T = 200 (not among the fitted or verified sizes) against the MAC polynomial."""
    out = json_of(capsys, "flops", "amnl-compact", "--input", "1xTx17", "--vary", "T", "--format", "json")
    block = out["polynomial"]
    assert block["variable"] == "T" and block["quantities"]["parameters"]["formula"] == "960,964"
    macs = block["quantities"]["macs"]
    assert 200 not in macs["fitted_at"] + macs["verified_at"]
    coefficients = {int(k): Fraction(v) for k, v in macs["coefficients"].items()}
    predicted = sum(c * 200**k for k, c in coefficients.items())
    model = build_target("amnl-compact", device="meta").model
    assert predicted == audit_macs(model, parse_inputs(["1x200x17"])[0]).macs
    assert macs["degree"] == 2  # attention's T x T scores and A V


def test_vary_markdown_names_the_dominant_term(capsys):
    code, out, err = run(capsys, "flops", "amnl-compact", "--input", "1xTx17", "--vary", "T")
    assert code == EXIT_OK, err
    assert "# Cost in T: amnl-compact" in out and "dominates from T=" in out and "passes" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--input", "1x30x17", "--vary", "T"], "no --input has a dimension named T"),
        (["--input", "1xTx17", "--vary", "T", "--compare"], "does not combine with --compare"),
        (["--input", "1xTx17", "--vary", "9x"], "not a dimension name"),
    ],
)
def test_vary_refusals(capsys, argv, fragment):
    assert fragment in refused(capsys, "flops", "amnl-compact", *argv)


# ------------------------------------------------------------------------------------------------------- memory


def test_memory_json_weights_are_numel_times_element_size(capsys):
    """Oracle: numel() x element_size() over the model's parameters (each tensor once)."""
    out = json_of(capsys, "memory", "amnl-compact", "--optimizer", "sgd", "--format", "json")
    model = build_target("amnl-compact", device="meta").model
    expected = sum(p.numel() * p.element_size() for p in model.parameters())
    assert list(out)[:5] == ["weights", "gradients", "optimizer", "activations", "total"]
    assert out["weights"] == expected == out["gradients"]  # every parameter trainable, fp32 gradients
    assert out["optimizer"] == 0  # plain SGD keeps no state
    assert out["total"] == out["weights"] + out["buffers"] + out["gradients"] + out["optimizer"] + out["activations"]


def test_memory_markdown(capsys):
    code, out, err = run(capsys, "memory", "dcnn", "--precision", "bf16-mixed")
    assert code == EXIT_OK, err
    assert "precision bf16-mixed" in out and "## Inference (no gradients)" in out and "training peak" in out


def test_memory_runs_no_mac_trace(capsys, monkeypatch: pytest.MonkeyPatch):
    """The memory passes need the inputs, not the MAC trace: ``archaudit memory`` never calls audit_macs (its
    figures are those of the same command with the trace, pinned by the tests above and by reports/)."""
    import sys

    def no_trace(*args, **kwargs):
        raise AssertionError("archaudit memory ran a MAC trace")

    monkeypatch.setattr(sys.modules["archaudit.audit"], "audit_macs", no_trace)
    out = json_of(capsys, "memory", "dcnn", "--format", "json")
    assert out["weights"] > 0 and out["activations"] > 0


def test_memory_refuses_a_kv_cache_for_a_model_without_one(capsys):
    assert "no decoder layout found in AMNL" in refused(capsys, "memory", "amnl-compact", "--kv-cache-tokens", "16")


# --------------------------------------------------------------------------------------------------------- diff


def test_diff_against_its_own_baseline_has_no_growth(capsys, tmp_path: Path):
    code, out, _ = run(capsys, "flops", "amnl-compact", "--format", "json")
    baseline = tmp_path / "baseline.json"
    baseline.write_text(out, encoding="utf-8")
    code, out, err = run(capsys, "diff", str(baseline), "amnl-compact", "--fail-over", "0")
    assert code == EXIT_OK, err
    assert "0 added, 0 removed, 0 changed" in out


def test_diff_fails_over_a_growth_limit(capsys, tmp_path: Path):
    """amnl-compact -> amnl: 27,641,792 -> 367,401,280 MACs (budgets.toml), +1229.15%, over any small limit."""
    code, out, _ = run(capsys, "flops", "amnl-compact", "--format", "json")
    baseline = tmp_path / "baseline.json"
    baseline.write_text(out, encoding="utf-8")
    code, out, err = run(capsys, "diff", str(baseline), "amnl", "--fail-over", "5")
    assert code == EXIT_CHECK_FAILED
    assert "MACs grew 27,641,792 -> 367,401,280 (+1229.15%), more than 5.0%" in err
    code, out, err = run(capsys, "diff", "amnl-compact", "amnl", "--format", "json", "--fail-over", "2000")
    assert code == EXIT_OK, err
    assert json.loads(out)["totals"]["params"]["after"] == 12_354_276


def test_diff_refuses_a_bad_percentage(capsys):
    assert "is not a percentage" in refused(capsys, "diff", "amnl", "amnl", "--fail-over", "five")


def test_memory_vary_predicts_saved_activations_at_an_unseen_size(capsys):
    """Oracle: audit_memory at T = 200 (not among the sizes fitted or verified) against the polynomial."""
    from archaudit.memory import audit_memory

    out = json_of(capsys, "memory", "amnl-compact", "--input", "1xTx17", "--vary", "T", "--format", "json")
    quantities = out["polynomial"]["quantities"]
    assert "macs" not in quantities  # bytes only: flops --vary has the MACs
    saved = quantities["saved_activation_bytes"]
    assert 200 not in saved["fitted_at"] + saved["verified_at"]
    predicted = sum(Fraction(v) * 200 ** int(k) for k, v in saved["coefficients"].items())
    model = build_target("amnl-compact", device="meta").model
    assert predicted == audit_memory(model, parse_inputs(["1x200x17"])[0]).activations


def test_a_growth_gate_that_compares_nothing_is_refused(capsys, tmp_path: Path):
    """A flops JSON (MACs, no parameters) against a params JSON (parameters, no MACs) share no total: --fail-over
    must not pass having checked nothing."""
    code, out, _ = run(capsys, "flops", "amnl-compact", "--format", "json")
    flops = tmp_path / "flops.json"
    flops.write_text(out, encoding="utf-8")
    code, out, _ = run(capsys, "params", "amnl-compact", "--format", "json")
    params = tmp_path / "params.json"
    params.write_text(out, encoding="utf-8")
    assert "no total is held by both sides" in refused(capsys, "diff", str(flops), str(params), "--fail-over", "0")


def test_a_growth_gate_on_other_inputs_is_refused(capsys, tmp_path: Path):
    """MACs at 1x15x17 against a baseline at 1x30x17 are not like for like: the gate refuses, never fails or passes."""
    code, out, _ = run(capsys, "flops", "amnl-compact", "--format", "json")
    baseline = tmp_path / "baseline.json"
    baseline.write_text(out, encoding="utf-8")
    err = refused(capsys, "diff", str(baseline), "amnl-compact", "--input", "1x15x17", "--fail-over", "0")
    assert "inputs differ" in err and "1x30x17" in err and "1x15x17" in err


ODD_CONFIGS = '''
import types
from torch import nn


class WithConfig(nn.Module):
    """A Linear with a config that reads as no transformer: heads that do not divide the width, or a list of them
    (Swin's num_heads per stage)."""

    def __init__(self, heads):
        super().__init__()
        self.config = types.SimpleNamespace(num_hidden_layers=2, hidden_size=10, num_attention_heads=heads)
        self.l = nn.Linear(10, 10)

    def forward(self, x):
        return self.l(x)


def odd():
    return WithConfig(3)


def per_stage():
    return WithConfig([2, 5])
'''


@pytest.mark.parametrize("builder", ["odd", "per_stage"])
def test_a_config_that_is_no_transformer_gets_no_estimates(capsys, tmp_path: Path, builder):
    path = tmp_path / "configs.py"
    path.write_text(ODD_CONFIGS, encoding="utf-8")
    out = json_of(capsys, "flops", f"{path}:{builder}", "--input", "1x5x10", "--training", "--format", "json")
    assert out["estimates"] is None and out["training"]["forward"] == 500  # 5 rows x 10 x 10


def test_an_image_input_gets_no_token_estimates(capsys):
    """examples/vit.py takes 1x3x32x32 pixels: its dim 1 is channels, not tokens, so no per-token estimate is set."""
    out = json_of(capsys, "flops", "examples/vit.py:build", "--input", "1x3x32x32", "--training", "--format", "json")
    assert out["estimates"] is None


def test_memory_vary_refuses_a_fixed_kv_cache(capsys):
    err = refused(capsys, "memory", "amnl-compact", "--input", "1xTx17", "--vary", "T", "--kv-cache-tokens", "8")
    assert "--kv-cache-tokens does not combine with --vary" in err
