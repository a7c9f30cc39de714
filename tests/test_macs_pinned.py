"""MACs pinned against published expected values from other tools' own test suites, each converted to
archaudit's convention (MACs of weight and attention products, bias excluded; FLOPs = 2 x MACs) with the
conversion in a comment; and the large AMNL's hand arithmetic.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from archaudit.inputs import parse_input
from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK, main
from archaudit.errors import ForwardError, InputSpecError
from archaudit.macs import audit_macs
from archaudit.records import Status


def macs(module: nn.Module, *shapes: tuple[int, ...]) -> int:
    with torch.device("meta"):
        inputs = [torch.empty(s) for s in shapes]
    return audit_macs(module, inputs).macs


PINNED = [
    # torchprofile tests/test_ops.py (MACs, bias excluded: no conversion)
    (lambda: nn.Linear(16, 32), [(4, 16)], 2_048),  # 4*16*32
    (lambda: nn.Conv1d(3, 16, 3, bias=False), [(1, 3, 32)], 4_320),  # 1*16*30 outputs * 3*3
    (lambda: nn.Conv2d(3, 16, 3, padding=1, bias=False), [(1, 3, 8, 8)], 27_648),  # 64*16 outputs * 3*9
    (lambda: nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), [(1, 16, 8, 8)], 9_216),  # 64*16 * 1*9
    (lambda: nn.LSTM(16, 32), [(5, 1, 16)], 30_720),  # 5 steps * 4*32*(16+32)
    # 10 steps * 2 dirs * [4*64*(32+64) + 4*64*(128+64)]
    (lambda: nn.LSTM(32, 64, num_layers=2, bidirectional=True, batch_first=True), [(1, 10, 32)], 1_474_560),
    # fvcore tests/test_flop_count.py (one "flop" per MAC, bias excluded: no conversion)
    (lambda: nn.Linear(10, 20), [(5, 10)], 1_000),
    (lambda: nn.Conv2d(10, 3, 3, padding=1), [(5, 10, 15, 15)], 303_750),  # 5*3*225 outputs * 10*9
    (lambda: nn.Conv2d(10, 6, 3, stride=2, padding=1), [(2, 10, 20, 20)], 108_000),  # 2*6*100 * 10*9
    (lambda: nn.Conv2d(16, 8, 5, padding=2, groups=4), [(5, 16, 15, 15)], 900_000),  # 5*8*225 * 4*25
    (lambda: nn.Conv2d(16, 8, 3, padding=1, groups=8), [(5, 16, 15, 15)], 162_000),  # 5*8*225 * 2*9
    (lambda: nn.Conv1d(10, 3, 3, padding=1), [(5, 10, 15)], 6_750),  # 5*3*15 * 10*3
    (lambda: nn.Conv3d(10, 3, 3, padding=1), [(5, 10, 15, 15, 15)], 13_668_750),  # 5*3*3375 * 10*27
    # transposed: input-centric, 5*10*225 input elements * 3*9, whatever the stride
    (lambda: nn.ConvTranspose2d(10, 3, 3, padding=1), [(5, 10, 15, 15)], 303_750),
    (lambda: nn.ConvTranspose2d(10, 3, 3, stride=2, padding=1), [(5, 10, 15, 15)], 303_750),
    (lambda: nn.ConvTranspose2d(10, 3, 3, stride=3, padding=1, output_padding=2), [(5, 10, 15, 15)], 303_750),
    # ptflops tests/common_test.py counts one add per output element for bias: 2,759,904 - 2*222*222 = 2,661,336
    (lambda: nn.Conv2d(3, 2, 3), [(1, 3, 224, 224)], 2_661_336),
    # ptflops: Linear(3, 2) with bias = 8, less 2 bias adds = 6
    (lambda: nn.Linear(3, 2), [(1, 3)], 6),
    # torchinfo tests/test_output/groups.out: 5,602,688 less bias 32*7*676 = 5,451,264
    (lambda: nn.Conv2d(16, 32, 3, groups=4), [(7, 16, 28, 28)], 5_451_264),
    # torchinfo tests/test_output/lstm.out: LSTM(300, 512, 2 layers) over 100 tokens: 376,832,000 includes
    # both bias vectors, 100 * 2 layers * 2*4*512 = 819,200, leaving 376,012,800
    (lambda: nn.LSTM(300, 512, num_layers=2), [(100, 1, 300)], 376_012_800),
]


@pytest.mark.parametrize(("build", "shapes", "expected"), PINNED)
def test_pinned_against_other_tools_test_suites(build, shapes, expected):
    with torch.device("meta"):
        module = build()
    assert macs(module, *shapes) == expected


def test_bias_and_other_work_are_kept_out_of_macs():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2), nn.ReLU(), nn.Softmax(-1))
    counts = audit_macs(model, [parse_input("4x3")]).counts
    # 4 rows: 4*3*2 MACs, 4*2 bias adds, 8 normalised, 8 activations, 8 softmax elements
    assert counts.as_dict() == {"macs": 24, "bias": 8, "norm": 8, "activation": 8, "softmax": 8}
    assert audit_macs(model, [parse_input("4x3")]).flops == 48


def test_amnl_large_hand_arithmetic():
    from reference_models import get_reference

    entry = get_reference("amnl")
    with torch.device("meta"):
        model = entry.build()
    audit = audit_macs(model, entry.example_input(1, "meta"))
    # CNN, 30 steps, k=3: 30*3*(17*128 + 128*256 + 256*384) = 11,992,320
    assert audit.component("cnn").macs == 11_992_320
    # BiLSTM, 30 steps * 2 dirs * [4*384*(384+384) + 2 * 4*384*(768+384)] = 283,115,520
    assert audit.component("lstm").macs == 283_115_520
    # attention, L=S=30, E=768: 4*30*768*768 projections + 2*30*30*768 products = 72,161,280
    assert audit.component("attention").macs == 72_161_280
    # funnel + heads on the last step only: 768*128 + 128*64 + (64*128 + 128*64 + 64*32 + 32*16 + 16)
    # + (64*64 + 64*32 + 32*16 + 16*3) = 106,496 + 18,960 + 6,704
    assert sum(audit.component(c).macs for c in ("funnel", "rul_head", "health_head")) == 132_160
    assert audit.macs == 367_401_280 and audit.flops == 734_802_560
    assert audit.unsupported == ()


def test_packed_sequence_counts_only_real_steps():
    class Packer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 16)

        def forward(self, x):
            return self.lstm(pack_padded_sequence(x, torch.tensor([7, 5, 2])))[0].data

    audit = audit_macs(Packer(), [torch.empty(7, 3, 8)])
    # 7 + 5 + 2 = 14 real steps (not 7*3 = 21) * 4*16*(8+16)
    assert audit.record("lstm").macs == 14 * 4 * 16 * 24 == 21_504


def test_token_id_inputs_and_several_inputs():
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 16)
            self.proj = nn.Linear(4, 16)

        def forward(self, ids, extra):
            return self.embed(ids) + self.proj(extra)

    audit = audit_macs(TwoInputs(), [parse_input("2x10:int64"), parse_input("2x10x4")])
    assert audit.inputs == ("2x10:int64", "2x10x4")
    assert audit.record("embed").macs == 0 and audit.record("embed").status is Status.FORMULA
    assert audit.macs == 2 * 10 * 4 * 16  # the projection only


def test_custom_module_matmul_is_counted_op_by_op_and_labelled():
    class Scores(nn.Module):
        def forward(self, q, k):
            return q @ k.transpose(-1, -2)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q = nn.Linear(8, 8)
            self.scores = Scores()

        def forward(self, x):
            return self.scores(self.q(x), x)

    audit = audit_macs(Model(), [parse_input("2x5x8")])
    scores = audit.record("scores")
    assert scores.status is Status.OPS and scores.source == "ops" and scores.unsupported_ops == ()
    assert scores.macs == 2 * 5 * 5 * 8  # batch 2, 5x8 @ 8x5
    assert [r.name for r in audit.by_ops] == ["scores"] and audit.unsupported == ()
    assert audit.macs == 2 * 5 * 8 * 8 + 400


def test_capture_does_not_touch_a_cpu_model():
    model = nn.Linear(4, 4)
    audit_macs(model, [torch.randn(2, 4)])
    assert model.weight.device.type == "cpu"


def test_forward_failure_names_the_module():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 8), nn.Linear(5, 2))
    with pytest.raises(ForwardError, match=r"failed in module '1' \(Linear\)"):
        audit_macs(model, [parse_input("3x4")])


@pytest.mark.parametrize("text", ["1x", "abc", "1x0x3", "2x3:complex", ""])
def test_bad_input_shapes_are_refused_by_name(text):
    with pytest.raises(InputSpecError, match="--input"):
        parse_input(text)


def test_cli_flops_json_and_compare(capsys):
    assert main(["flops", "amnl", "--format", "json", "--compare"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert {"macs", "flops", "modules", "unsupported", "tools"} <= set(data)
    assert data["macs"] == 367_401_280 and data["flops"] == 2 * data["macs"]
    assert {"name", "type", "macs", "status"} <= set(data["modules"][0])
    assert data["tools"]["flop_counter_meta"] == 367_401_280
    assert data["tools"]["torchinfo"] == 295_819_620  # MultiheadAttention missing, LSTM and biases as params x T
    assert data["tools"]["fvcore"] < 90_000_000  # no aten::lstm handle
    lstm = next(r for r in data["comparison"] if r["name"] == "lstm")
    assert "aten::lstm" in lstm["reasons"]["fvcore"]


def test_cli_flops_markdown_input_and_errors(capsys):
    assert main(["flops", "amnl", "--input", "4x30x17"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Input: 4x30x17" in out and f"{4 * 367_401_280:,}" in out
    assert main(["flops", "torch.nn:Identity"]) == EXIT_BAD_INPUT
    assert "--input" in capsys.readouterr().err
    assert main(["flops", "amnl", "--input", "1x30x18"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "failed in module" in err and "Traceback" not in err
