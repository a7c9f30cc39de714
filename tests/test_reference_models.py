"""Reference models: forward shapes (real and meta, train and eval), pinned counts with their arithmetic,
and every provenance assumption reproducing the figure it was fixed from.

Oracle for the pinned counts: numel() through archaudit's walker, with the arithmetic written by hand.
"""

from __future__ import annotations

import functools

import pytest
import torch

from archaudit import audit_params
from archaudit.formulas.attention import AttentionSpec, attention_params
from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK, main
from reference_models import get_reference, reference_names, references
from reference_models.amnl import build_amnl, build_amnl_compact, build_amnl_v2
from reference_models.dast import build_dast, build_dast_as_released
from reference_models.dcnn import DCNN
from reference_models.transformer_rul import TransformerRUL

BUILT = [e.name for e in references() if e.published_architecture]
EXPECTED_OUTPUTS = {"amnl": [(2, 1), (2, 3)], "amnl-compact": [(2, 1), (2, 3)], "amnl-v2": [(2, 1), (2, 3)],
                    "dcnn": [(2, 1)], "dast": [(2, 1)], "transformer-rul": [(2, 1)]}


def shapes(out) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in (out if isinstance(out, tuple) else (out,))]


def test_every_built_model_has_expected_outputs():
    assert sorted(BUILT) == sorted(EXPECTED_OUTPUTS)


@functools.cache
def _built(name, device):
    with torch.device(device):
        return get_reference(name).build()


@pytest.mark.parametrize("name", BUILT)
@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("training", [True, False])
def test_forward_runs_with_documented_shapes(name, device, training):
    entry = get_reference(name)
    model = _built(name, device)  # one build serves both modes
    model.train(training)
    with torch.no_grad():
        out = model(*entry.example_input(batch=2, device=device))
    assert shapes(out) == EXPECTED_OUTPUTS[name]
    assert all(t.device.type == device for t in (out if isinstance(out, tuple) else (out,)))


@pytest.mark.parametrize("name", BUILT)
def test_every_module_is_counted_by_a_formula_or_known_zero(name):
    audit = audit_params(get_reference(name).build())
    assert audit.unsupported == () and audit.mismatches == () and audit.unregistered == ()


def test_amnl_large_components():
    audit = audit_params(build_amnl())
    parts = {c: audit.component(c) for c in ("cnn", "lstm", "attention", "attention_norm", "funnel",
                                              "rul_head", "health_head")}
    assert parts == {
        "cnn": 402_048,  # 3*(17*128 + 128*256 + 256*384) = 399,744 + bias 768 + BN 2*768
        # layer 1: 2 dirs * 4*(384*384 + 384*384 + 2*384) = 2,365,440; layers 2-3 (input 768):
        # 2 * 2 dirs * 4*(768*384 + 384*384 + 2*384) = 7,090,176
        "lstm": 9_455_616,
        "attention": 2_362_368,  # 4*768*768 + 4*768
        "attention_norm": 1_536,  # 2*768
        "funnel": 106_688,  # 768*128 + 128 + 128*64 + 64
        "rul_head": 19_201,  # 8,320 + 8,256 + 2,080 + 528 + 17
        "health_head": 6_819,  # 4,160 + 2,080 + 528 + 51
    }
    assert audit.total == sum(parts.values()) == 12_354_276


def test_amnl_compact_reproduces_its_documents_component_figures():
    audit = audit_params(build_amnl_compact())
    assert audit.component("cnn") == 53_184  # 3*(17*64 + 64*128 + 128*64) + 256 bias + 2*256 BN
    # 2*4*(64*128 + 128*128 + 256) + 2*4*(256*128 + 128*128 + 256) = 593,920; + LayerNorm(256) 512
    assert audit.component("lstm") + audit.component("lstm_norm") == 594_432
    # 4*256*256 + 4*256 = 263,168; + LayerNorm(256) 512
    assert audit.component("attention") + audit.component("attention_norm") == 263_680
    assert audit.component("rul_head") == 33_025  # 256*128 + 128 + 128*1 + 1
    assert audit.component("health_head") == 16_643  # 256*64 + 64 + 64*3 + 3
    assert audit.total == 960_964  # the document's own subtotal: 53,184 + 594,432 + 263,680 + 33,025 + 16,643


def test_amnl_v2_total():
    audit = audit_params(build_amnl_v2())
    # CNN 3*(17*64 + 64*128 + 128*64) + BN 2*256 = 52,928; BiLSTM 2*4*(64*256 + 256*256 + 512)
    # + 2*4*(512*256 + 256*256 + 512) = 2,236,416; attention 4*512*512 + 4*512 = 1,050,624; LayerNorm 1,024;
    # funnel 131,328 + 16,448 + 2,080 = 149,856; RUL 2,112 + 2,080 + 528 + 17 = 4,737; health 1,056 + 528 + 51
    assert audit.total == 52_928 + 2_236_416 + 1_050_624 + 1_024 + 149_856 + 4_737 + 1_635 == 3_497_220


# --- each provenance assumption reproduces the figure it was fixed from -----------------------------------------


def test_amnl_kernel_size_3_with_bias_and_bn_is_the_only_one_giving_402k():
    def cnn(**kw) -> int:
        return audit_params(build_amnl(**kw)).component("cnn")

    assert round(cnn() / 1000) == 402
    for k in (1, 2, 4, 5):
        assert round(cnn(kernel_size=k) / 1000) != 402
    assert round(cnn(batchnorm=False) / 1000) == 401  # 400,512
    assert round(cnn(conv_bias=False) / 1000) == 401  # 401,280
    assert round(cnn(conv_bias=False, batchnorm=False) / 1000) == 400  # 399,744


def test_amnl_funnel_is_natural_and_147k_is_not_reproduced_by_it():
    audit = audit_params(build_amnl())
    fc_and_heads = sum(audit.component(c) for c in ("funnel", "rul_head", "health_head"))
    assert fc_and_heads == 132_708  # 106,688 + 19,201 + 6,819
    assert round(fc_and_heads / 1000) != 147
    for width in (64, 256, 512):  # other power-of-two funnels 768 -> width -> 64 miss it too
        audit = audit_params(build_amnl(funnel=(width, 64)))
        assert round(sum(audit.component(c) for c in ("funnel", "rul_head", "health_head")) / 1000) != 147


def test_amnl_layer_norm_is_the_documents_1_5k():
    assert audit_params(build_amnl()).component("attention_norm") == 1_536  # 2*768 -> "1.5K"


def test_amnl_compact_needs_its_layer_norms_for_its_figures():
    without = audit_params(build_amnl_compact(lstm_norm=False))
    assert without.component("lstm") == 593_920 != 594_432  # the 512 is the LayerNorm(256)
    # No attention width alone gives 263,680: 4d^2 + 4d is 263,168 at d=256 and 265,224 at d=257.
    widths = [d for d in range(1, 1025) if attention_params(AttentionSpec(d, 1, d, d)) == 263_680]
    assert widths == []


def test_amnl_compact_widths_are_the_ones_that_reproduce_53184_and_feed_the_lstm():
    audit = audit_params(build_amnl_compact())
    assert audit.component("cnn") == 53_184
    model = build_amnl_compact()
    assert model.lstm.input_size == model.cnn[-3].out_channels == 64  # conv, BN, ReLU: the last conv feeds it


def test_amnl_compact_head_count_does_not_change_any_figure():
    assert audit_params(build_amnl_compact(attention_heads=4)).total == audit_params(build_amnl_compact()).total


def test_transformer_rul_four_layers_is_the_only_depth_in_the_rows_range():
    def total(layers: int) -> int:
        with torch.device("meta"):
            return audit_params(TransformerRUL(num_layers=layers)).total

    # per layer: 4*512^2 + 4*512 + 2*512*2048 + 2048 + 512 + 2*2*512 = 3,152,384; embed 17*512 + 512; head 513
    assert total(4) == 4 * 3_152_384 + 9_216 + 513 == 12_619_265
    assert [12e6 <= total(n) <= 15e6 for n in (3, 4, 5)] == [False, True, False]


@pytest.mark.parametrize(("subset", "expected"), [
    # convs 110 + 3*1,010 + 31 = 3,171; Dense(14*N_tw, 100) = 1,400*N_tw + 100; Dense(100, 1) = 101
    ("FD001", 3_171 + 42_100 + 101), ("FD002", 3_171 + 28_100 + 101),
    ("FD003", 3_171 + 42_100 + 101), ("FD004", 3_171 + 21_100 + 101),
])
def test_dcnn_per_subset(subset, expected):
    model = DCNN(subset)
    assert audit_params(model).total == expected
    assert model(torch.randn(3, model.window, 14)).shape == (3, 1)


def test_dcnn_same_padding_keeps_the_window():
    model = DCNN("FD002")
    assert model.features(torch.randn(1, 1, 20, 14)).shape == (1, 1, 20, 14)


def test_dast_time_step_42_is_what_its_data_needs():
    x = torch.randn(2, 42, 14)  # 40 cycles + slope row + mean row
    assert build_dast()(x).shape == (2, 1)
    with pytest.raises(RuntimeError):
        build_dast(time_step=62)(x)  # the script's setting fails on its own data


def test_dast_counts():
    # per attention block: 4 heads * 3*64*64 + 256*64 = 65,536; encoder layer + 2*(64*64 + 64) + 2*128 = 74,112;
    # decoder layer 2*65,536 + 8,320 + 3*128 = 139,776; top level 960 + (42*64 + 64) + 960 + 257 + 128 = 5,057
    assert audit_params(build_dast()).total == 4 * 74_112 + 139_776 + 5_057 == 441_281


def test_dast_as_released_hides_its_layers_and_the_walker_finds_them():
    model = build_dast_as_released()
    audit = audit_params(model)
    assert audit.total == 5_057  # what PyTorch (and the optimizer) see
    assert [(u.name, u.params) for u in audit.unregistered] == [
        ("sensor_encoder[0]", 74_112), ("sensor_encoder[1]", 74_112),
        ("time_encoder[0]", 74_112), ("time_encoder[1]", 74_112), ("decoder[0]", 139_776),
    ]
    assert audit.total + audit.unregistered_params == 441_281
    assert model(torch.randn(2, 42, 14)).shape == (2, 1)  # it still runs


def test_unpublished_baselines_build_nothing():
    for name in ("bilstm-ed", "dkamformer"):
        entry = get_reference(name)
        assert not entry.published_architecture and entry.input_shape is None
        with pytest.raises(LookupError, match="no public architecture"):
            entry.build()


def test_every_entry_has_provenance_fields():
    for entry in references():
        assert entry.name and entry.description and entry.citation
        for assumption in entry.provenance:
            assert assumption.hyperparameter and assumption.fixed_by


def test_cli_params_and_list(capsys):
    assert main(["params", "amnl", "--format", "json"]) == EXIT_OK
    assert '"total": 12354276' in capsys.readouterr().out
    assert main(["params", "amnl-compact"]) == EXIT_OK
    assert "960,964" in capsys.readouterr().out
    assert main(["list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert all(name in out for name in reference_names())


def test_unknown_model_exits_2_and_lists_the_known_names(capsys):
    assert main(["params", "amnl-xl"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "unknown reference model 'amnl-xl'" in err
    assert all(name in err for name in reference_names())


def test_unpublished_model_as_target_exits_2(capsys):
    assert main(["params", "bilstm-ed"]) == EXIT_BAD_INPUT
    assert "no public architecture" in capsys.readouterr().err
