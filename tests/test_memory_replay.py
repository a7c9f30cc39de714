"""Repeated blocks in a memory pass: a twin's call replayed gives the figures its own run gives.

ORACLES
* the same model measured with every module call run (``MemoryMeter(on="fake", replay=False)``): the whole audit,
  per module, byte for byte;
* a zero CPU copy of it, run with the CPU's real kernels on real tensors (``on="cpu"``, which never replays);
* what autograd holds after a real CPU forward without hooks (:func:`cpu_held_bytes`): the tensors saved by the
  nodes of the graph that reaches the outputs, read off the nodes themselves. A forward whose outputs are all
  used saves nothing else (``cpu_saved_bytes`` of test_memory agrees there); one that drops an output frees what
  that output's graph saved, and these cases do.

Each model is small, so both oracles run; the replay is what makes the 6.4-billion-parameter stack of the
benchmarks quick (benchmarks/run.py, section 4), and these tests hold it to the same answers as running everything.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from archaudit import memory
from archaudit.inputs import InputSpec
from archaudit.memory import MemoryMeter
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from torch.utils._pytree import tree_leaves


class Replays:
    """Counts the calls replayed and the calls measured for a replay during one audit."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.replayed = self.measured = 0
        replay, measure = memory._Repeats._replay, memory._Repeats._measure

        def counted_replay(repeats: Any, *args: Any) -> Any:
            self.replayed += 1
            return replay(repeats, *args)

        def counted_measure(repeats: Any, *args: Any) -> Any:
            self.measured += 1
            return measure(repeats, *args)

        monkeypatch.setattr(memory._Repeats, "_replay", counted_replay)
        monkeypatch.setattr(memory._Repeats, "_measure", counted_measure)


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> Replays:
    return Replays(monkeypatch)


def cpu_held_bytes(model: nn.Module, inputs: list[torch.Tensor]) -> int:
    """The oracle: a real CPU forward in train mode, no hooks; every node reachable from the outputs' grad_fn, its
    saved tensors (its ``_saved_*`` attributes); distinct storages by ``data_ptr``, parameters' and buffers' out."""
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    output = model.train()(*inputs)
    pending = [t.grad_fn for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
    seen: set[int] = set()
    sizes: dict[int, int] = {}
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        for name in dir(node):
            if not name.startswith("_saved_"):
                continue
            value = getattr(node, name)
            for tensor in value if isinstance(value, (tuple, list)) else [value]:
                if isinstance(tensor, torch.Tensor):
                    ptr = tensor.untyped_storage().data_ptr()
                    if ptr not in weights:
                        sizes[ptr] = tensor.untyped_storage().nbytes()
        pending.extend(next_node for next_node, _ in node.next_functions)
    del output
    return sum(sizes.values())


def _figures(audit: memory.MemoryAudit) -> dict[str, Any]:
    found = audit.as_json()
    for key in ("measured_on", "notes"):
        found.pop(key, None)
    return found


def assert_replay_exact(
    model: nn.Module, inputs: list[torch.Tensor], *, precision: str = "fp32", cpu: bool = True
) -> None:
    """The audit with replay == the audit running every call (fake tensors) == the zero CPU copy's (with ``cpu``);
    the saved bytes == those autograd holds after a real CPU forward."""
    specs = [InputSpec(tuple(t.shape), t.dtype) for t in inputs]
    replayed = MemoryMeter(model, on="fake", precision=precision).audit(specs)
    every_call = MemoryMeter(model, on="fake", precision=precision, replay=False).audit(specs)
    assert _figures(replayed) == _figures(every_call)
    if cpu:
        assert _figures(replayed) == _figures(MemoryMeter(model, on="cpu", precision=precision).audit(specs))
    if precision == "fp32":
        assert replayed.activations == cpu_held_bytes(model, inputs)


def _encoder(layers: int, width: int = 16, *, norm_first: bool = False, dropout: float = 0.1) -> nn.Module:
    return nn.Sequential(
        *[
            nn.TransformerEncoderLayer(width, 2, 32, dropout=dropout, batch_first=True, norm_first=norm_first)
            for _ in range(layers)
        ]
    )


class Block(nn.Module):
    """A residual MLP block; ``returns`` picks what it hands back beside (or instead of) its output."""

    def __init__(self, width: int, returns: str = "tensor", inplace: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 2 * width)
        self.act = nn.ReLU(inplace=inplace)
        self.down = nn.Linear(2 * width, width)
        self.returns = returns

    def forward(self, x: torch.Tensor) -> Any:
        y = x + self.down(self.act(self.up(self.norm(x))))
        if self.returns == "tuple":
            return y, None, 3
        if self.returns == "mask":
            return y, (y > 0).sum()  # an output that needs no gradient beside one that does
        if self.returns == "object":
            return y, object()  # a value no twin may share: not read, run
        if self.returns == "view":
            return torch.cat([y, y])[len(y) :]  # a view into a larger storage it made: not read, run
        return y


class Counter(Block):
    """Changes its own state at every call: its calls cannot be replayed."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> Any:
        self.calls += 1
        return super().forward(x)


class Identity(nn.Module):
    """Returns its input: an output it did not make."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Saves(nn.Module):
    """Saves its input through a view (a transpose) and itself (a matmul's operand)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ x.transpose(-1, -2)).sum(-1, keepdim=True) * (x @ self.weight)


class ViewBlock(Block):
    """Saves a view of its input (its norm's input), not the input itself."""

    def forward(self, x: torch.Tensor) -> Any:
        return super().forward(x.view(x.shape))


class SigmoidBlock(Block):
    """Its last op saves its output: the output and the node saving it hold each other."""

    def forward(self, x: torch.Tensor) -> Any:
        return super().forward(x).sigmoid()


class Branches(nn.Module):
    """Calls twins whose outputs it drops: their graphs, and what they saved, die at once, while their input lives
    on; the input is saved again by the later blocks, so which call it is charged to shows which saved tensor
    outlived its call (a view of the input dies with its node; the input itself, or an output its own node saved,
    does not)."""

    def __init__(self, width: int, dropped: type[Block]) -> None:
        super().__init__()
        self.kept = Block(width)
        self.dropped = nn.ModuleList([dropped(width) for _ in range(3)])
        self.more = nn.ModuleList([ViewBlock(width) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.kept(x)
        for block in self.dropped:
            block(y)
        for block in self.more:
            y = block(y)
        return y


class Pairs(nn.Module):
    """Twins called in a plain loop, with a frozen one whose layouts differ (requires_grad)."""

    def __init__(self, width: int, frozen: set[int]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(width) for _ in range(5)])
        for i in frozen:
            self.blocks[i].requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            out = block(x)
            x = out[0] if isinstance(out, tuple) else out
        return x


class Ignoring(Block):
    """Takes a second input that needs gradients and never reads it: its node must not hold that input's graph."""

    def forward(self, x: torch.Tensor, unused: torch.Tensor) -> Any:
        return super().forward(x)


class Ignored(nn.Module):
    """Each block gets a fresh tensor it ignores, whose graph (and what it saved) dies with the call."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.pre = nn.ModuleList([nn.Linear(width, width) for _ in range(3)])
        self.blocks = nn.ModuleList([Ignoring(width) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for pre, block in zip(self.pre, self.blocks, strict=True):
            x = block(x, pre(x).pow(2))  # pow saves its input, which only its node holds
        return x


class TwoLinears(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(width, width), nn.Linear(width, width)


class InPlaceOnInput(TwoLinears):
    """Changes its input in place: the input's own graph then holds what the call saved."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(torch.sigmoid(self.a(x)))
        return self.b(x)


class FillsAList(TwoLinears):
    """Hands a tensor back through a list its caller passed in."""

    def forward(self, x: torch.Tensor, out: list[torch.Tensor]) -> torch.Tensor:
        h = torch.relu(self.a(x))
        out.append(h)
        return self.b(h)


class KeepsItsLast(nn.Module):
    """Replaces a buffer with a tensor of the same layout at each call."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.a = nn.Linear(width, width)
        self.register_buffer("last", torch.zeros(3, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.a(x))
        self.last = y.detach()
        return y


class Tanh(TwoLinears):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


class Callers(nn.Module):
    """Calls its blocks as ``how`` says: dropping outputs, passing lists, twice, or taking a gradient of them."""

    def __init__(self, block: type[nn.Module], how: str, width: int = 8, count: int = 3) -> None:
        super().__init__()
        self.pre = nn.Linear(width, width, bias=False)
        self.blocks = nn.ModuleList([block(width) for _ in range(count)])
        self.how = how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        if self.how == "drop":
            for block in self.blocks:
                block(h)
            return torch.cat([h] * 4).exp()
        if self.how == "lists":
            extra: Any = 0
            for block in self.blocks:
                found: list[torch.Tensor] = []
                h = block(h, found)
                extra = extra + found[0]
            return h + extra
        if self.how == "twice":
            for block in (self.blocks[0], self.blocks[0], *self.blocks[1:]):
                h = block(h)
            return h
        if self.how == "gradient":
            x = x.clone().requires_grad_(True)
            h = x
            for block in self.blocks:
                h = block(h)
            (g,) = torch.autograd.grad(h.sum(), x, create_graph=True)
            return h.sum() + g.sum()
        for block in self.blocks:
            h = block(h)
        return h


class Bare(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(width, 2 * width, bias=False), nn.Linear(2 * width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def _sharing(how: str) -> nn.Module:
    model = Callers(Bare, how)
    for block in model.blocks[1:]:
        block.a.weight = model.blocks[0].a.weight
    return model


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


CASES = {
    "encoder-post-norm": (lambda: _encoder(4), lambda: [_x(2, 5, 16)]),
    "encoder-pre-norm": (lambda: _encoder(4, norm_first=True), lambda: [_x(2, 5, 16)]),
    "encoder-no-dropout": (lambda: _encoder(3, dropout=0.0), lambda: [_x(1, 7, 16)]),
    "torch-encoder": (
        lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 3),
        lambda: [_x(2, 5, 16)],
    ),
    "mlp-blocks": (lambda: nn.Sequential(*[Block(8) for _ in range(4)]), lambda: [_x(3, 8)]),
    "inplace-relu": (lambda: nn.Sequential(*[Block(8, inplace=True) for _ in range(4)]), lambda: [_x(3, 8)]),
    "tuple-outputs": (lambda: Pairs(8, set()).apply(_returning("tuple")), lambda: [_x(3, 8)]),
    "mask-outputs": (lambda: Pairs(8, set()).apply(_returning("mask")), lambda: [_x(3, 8)]),
    "frozen-blocks": (lambda: Pairs(8, {0, 2}), lambda: [_x(3, 8)]),
    "all-frozen": (lambda: Pairs(8, {0, 1, 2, 3, 4}), lambda: [_x(3, 8)]),
    "view-outputs": (lambda: nn.Sequential(*[Block(8, returns="view") for _ in range(4)]), lambda: [_x(3, 8)]),
    "counting": (lambda: nn.Sequential(*[Counter(8) for _ in range(3)]), lambda: [_x(3, 8)]),
    "identity": (lambda: nn.Sequential(Block(8), Identity(), Identity(), Block(8)), lambda: [_x(3, 8)]),
    "saves-inputs": (lambda: nn.Sequential(*[Saves(6) for _ in range(4)]), lambda: [_x(2, 5, 6)]),
    "dropped-blocks": (lambda: Branches(8, Block), lambda: [_x(3, 8)]),
    "dropped-view-blocks": (lambda: Branches(8, ViewBlock), lambda: [_x(3, 8)]),
    "dropped-sigmoid-blocks": (lambda: Branches(8, SigmoidBlock), lambda: [_x(3, 8)]),
    "ignored-input": (lambda: Ignored(8), lambda: [_x(3, 8)]),
    "list-argument": (lambda: Callers(FillsAList, "lists"), lambda: [_x(3, 8)]),
    "one-block-twice": (lambda: Callers(Bare, "twice"), lambda: [_x(3, 8)]),
}


def _returning(kind: str) -> Any:
    def set_kind(module: nn.Module) -> None:
        if isinstance(module, Block):
            module.returns = kind

    return set_kind


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_replayed_pass_is_the_pass_run_in_full(name: str) -> None:
    """ORACLES: the pass with every call run; the zero CPU copy; what autograd holds after a real CPU forward."""
    torch.manual_seed(0)
    make_model, make_inputs = CASES[name]
    assert_replay_exact(make_model(), make_inputs())


MIXED = {
    "encoder": lambda: _encoder(3),
    # autocast casts a weight once per forward and keeps the copy to its end: a block called twice, twins sharing
    # a weight, and dropped outputs whose weights' copies outlive them
    "one-block-twice": lambda: Callers(Bare, "twice"),
    "shared-weights": lambda: _sharing("chain"),
    "dropped-outputs": lambda: Callers(Bare, "drop"),
}


@pytest.mark.parametrize("how", ["chain", "drop"])
def test_a_block_replacing_a_buffer_is_not_replayed(how: str) -> None:
    """ORACLES: the pass with every call run; the zero CPU copy (whose buffers, as the fake passes' weights, are put
    back after each pass: test_a_pass_starts_from_the_model_as_built)."""
    torch.manual_seed(0)
    model = Callers(KeepsItsLast, how)
    assert_replay_exact(model, [_x(3, 8)])


def test_a_block_changing_its_input_in_place_is_not_replayed() -> None:
    """ORACLES: the pass with every call run; the zero CPU copy. Each block multiplies its input in place by what
    it computed from it, so the input's own graph holds what the call saved, and the caller drops the blocks'
    outputs: a replay would free what that graph holds. (The model cannot train: the in-place change overwrites a
    tensor its own Linear saved. The memory pass, which runs no backward, measures it all the same.)"""
    torch.manual_seed(0)
    model, specs = Callers(InPlaceOnInput, "drop"), [InputSpec((3, 8))]
    replayed = MemoryMeter(model, on="fake").audit(specs)
    assert _figures(replayed) == _figures(MemoryMeter(model, on="fake", replay=False).audit(specs))
    assert _figures(replayed) == _figures(MemoryMeter(model, on="cpu").audit(specs))


def test_a_forward_that_differentiates_runs_again_without_replays(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORACLES: the pass with every call run; the zero CPU copy. The forward takes torch.autograd.grad of its
    blocks' output (as force fields and gradient penalties do), which reaches a replayed block's node: the pass
    is run again with every call run, and gives the same bytes. (Its inference pass, under no_grad, cannot run:
    the training pass is what is compared.)"""
    torch.manual_seed(0)
    model, specs = Callers(Tanh, "gradient"), [InputSpec((3, 8))]
    runs: list[bool] = []
    run = memory._run

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(kwargs["replay"])
        return run(*args, **kwargs)

    monkeypatch.setattr(memory, "_run", counted)
    replayed = MemoryMeter(model, on="fake").training_bytes(specs)
    assert runs == [True, False]
    assert replayed == MemoryMeter(model, on="fake", replay=False).training_bytes(specs)
    assert replayed == MemoryMeter(model, on="cpu").training_bytes(specs)


class Remembers(nn.Module):
    """Keeps its last output as a plain attribute and, once it has one, saves more."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x) if self.last is None else self.a(x) * torch.sigmoid(x)
        self.last = y
        return y


@pytest.mark.parametrize("on", ["fake", "cpu"])
@pytest.mark.parametrize("make", [lambda: Callers(KeepsItsLast, "chain"), Remembers], ids=["buffer", "attribute"])
def test_a_pass_starts_from_the_model_as_built(on: str, make: Any) -> None:
    """A forward that replaces a buffer or sets an attribute leaves the next pass unchanged: each pass starts from
    the weights as made (torch's functional_call writes reassigned buffers
    back into the dict it is given; a zero CPU copy is kept between passes). An inference pass alone, or after two
    training passes, gives the same bytes."""
    model, specs = make(), [InputSpec((3, 8))]
    alone = MemoryMeter(model, on=on, replay=False).inference_bytes(specs)
    meter = MemoryMeter(model, on=on, replay=False)
    meter.training_bytes(specs)
    meter.training_bytes(specs)
    assert meter.inference_bytes(specs) == alone


@pytest.mark.parametrize("name", sorted(MIXED))
@pytest.mark.parametrize("precision", ["bf16-mixed", "fp16-mixed"])
def test_mixed_precision_replays_exactly(precision: str, name: str) -> None:
    """ORACLES: the pass with every call run; the zero CPU copy; under CPU autocast (its half copies of weights are
    saved activations of each layer)."""
    torch.manual_seed(0)
    model = MIXED[name]()
    inputs = [_x(2, 5, 16)] if name == "encoder" else [_x(3, 8)]
    assert_replay_exact(model, inputs, precision=precision)


def test_twins_are_replayed_and_what_cannot_be_read_runs(replays: Replays) -> None:
    """A stack's later layers are replayed; a block that changes its state, returns its input or returns an object
    never is. The
    first layer's input needs no gradient and the second's does, so both are measured: 6 layers, 2 measured, 4
    replayed."""
    specs = [InputSpec((2, 5, 16))]
    MemoryMeter(_encoder(6), on="fake").training_bytes(specs)
    assert (replays.measured, replays.replayed) == (2, 4)
    MemoryMeter(nn.Sequential(*[Counter(8) for _ in range(4)]), on="fake").training_bytes([InputSpec((3, 8))])
    MemoryMeter(nn.Sequential(Block(8), *[Identity() for _ in range(3)]), on="fake").training_bytes([InputSpec((3, 8))])
    MemoryMeter(Pairs(8, set()).apply(_returning("object")), on="fake").training_bytes([InputSpec((3, 8))])
    assert replays.replayed == 4
    MemoryMeter(_encoder(6), on="fake", replay=False).training_bytes(specs)
    MemoryMeter(_encoder(6), on="cpu").training_bytes(specs)
    MemoryMeter(_encoder(6), on="fake").inference_bytes(specs)
    assert replays.replayed == 4  # no replay asked for, a CPU pass, an inference pass: every call runs


def test_a_pass_leaves_no_replay_behind() -> None:
    """The replaying forwards are the pass's only: gone after it, also when the model's forward fails in it."""
    model = _encoder(3)
    MemoryMeter(model, on="fake").training_bytes([InputSpec((2, 5, 16))])
    assert all("forward" not in m.__dict__ for m in model.modules())
    with pytest.raises(Exception, match="memory pass"):
        MemoryMeter(model, on="fake").training_bytes([InputSpec((2, 5, 15))])  # the width is 16
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_a_hugging_face_decoder_is_exact() -> None:
    """ORACLES: as above, for GPT-2's blocks (their layer index differs, so none is a twin of another: what is
    held here is that looking for twins changes nothing)."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=3, n_embd=16, n_head=2, n_positions=32, vocab_size=50)
    torch.manual_seed(0)
    model = transformers.GPT2Model(config)
    specs = [InputSpec((1, 6), torch.int64)]
    replayed = MemoryMeter(model, on="fake").audit(specs)
    every_call = MemoryMeter(model, on="fake", replay=False).audit(specs)
    assert _figures(replayed) == _figures(every_call)


# four passes and a real forward per example: half the profile's examples (20 in CI, 500 in the deep profile)
@settings(max_examples=max(20, settings.default.max_examples // 2))
@given(
    layers=st.integers(2, 5),
    width=st.sampled_from([4, 8, 12]),
    tokens=st.integers(1, 6),
    norm_first=st.booleans(),
    frozen=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_stacks_replay_exactly(layers: int, width: int, tokens: int, norm_first: bool, frozen: list[bool]) -> None:
    """ORACLES: the pass with every call run; what autograd holds after a real CPU forward; over stacks of encoder
    layers some of which are frozen (a frozen layer is no twin of a trainable one). The zero CPU copy, held equal
    to the fake pass by test_trace_device and test_memory, is the third oracle of the cases above."""
    torch.manual_seed(0)
    model = _encoder(layers, width, norm_first=norm_first)
    for layer, off in zip(model, frozen, strict=False):
        layer.requires_grad_(not off)
    assert_replay_exact(model, [_x(2, tokens, width)], cpu=False)


class DropsASigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.kept, self.dropped = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.dropped(x).sigmoid()  # its graph dies here: nothing reaches it
        return self.kept(x)


@pytest.mark.parametrize("on", ["fake", "cpu"])
def test_a_dropped_output_frees_what_its_graph_saved(on: str) -> None:
    """ORACLE: cpu_held_bytes. A sigmoid saves its own output; were that output itself saved, it and the node
    saving it would hold each other, and the dead branch would count until Python's cycle collector ran. Both
    Linears save x (3 x 4 float32 = 48 bytes, one storage); the dropped sigmoid's 48 bytes are freed: 48."""
    torch.manual_seed(0)
    model, x = DropsASigmoid(), _x(3, 4)
    found = MemoryMeter(model, on=on, replay=False).training_bytes([InputSpec((3, 4))])[0]
    assert found == cpu_held_bytes(model, [x]) == 48


class TwoPaths(nn.Module):
    """One Linear registered at two paths (as T5's shared embedding is), called at both."""

    def __init__(self) -> None:
        super().__init__()
        self.b0, self.c = nn.Linear(8, 8), nn.Linear(8, 8)
        self.alias = self.b0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(self.alias(self.b0(x)))


def test_a_module_at_two_paths_measures_on_fake_tensors_as_on_the_cpu() -> None:
    """ORACLE: the zero CPU copy. Both passes of an audit run: the second no longer finds the first's write-back
    of the tied weights (functional_call refused it: 'got multiple values for keys which are tied')."""
    torch.manual_seed(0)
    specs = [InputSpec((3, 8))]
    assert _figures(MemoryMeter(TwoPaths(), on="fake").audit(specs)) == _figures(
        MemoryMeter(TwoPaths(), on="cpu").audit(specs)
    )
