"""The analytic ops of every space agree with the torch modules built from them (DESIGN.md section 4).

Shapes, parameters, MACs (torch's own FLOP counter, 2 per MAC) and reference-convention FLOPs (fvcore in
training mode) are compared for every distinct op; a coverage test shows that every (space, layer, block)
and every fixed layer is one of the ops compared.
"""

from __future__ import annotations

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch.utils.flop_counter import FlopCounterMode

import spaces
from spaces import Op
from spaces.modules import InvertedResidual, build_op


def _ops_of_all_spaces() -> dict[str, Op]:
    ops: dict[str, Op] = {}
    for name in spaces.list_spaces():
        for key, op in spaces.get_space(name).distinct_ops.items():
            ops.setdefault(key, op)
    return ops


TESTED_OPS = _ops_of_all_spaces()


def _example_input(op: Op) -> torch.Tensor:
    return torch.randn(1, *op.input_shape)


def fvcore_flops(module: torch.nn.Module, x: torch.Tensor) -> int:
    analysis = FlopCountAnalysis(module, (x,))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis.total()


@pytest.mark.parametrize("op", list(TESTED_OPS.values()), ids=list(TESTED_OPS))
def test_module_agrees_with_analytic_op(op: Op) -> None:
    torch.manual_seed(0)
    module = build_op(op).train()
    x = _example_input(op)
    with FlopCounterMode(display=False) as counter:
        y = module(x)

    assert tuple(y.shape) == (1, *op.output_shape)
    assert sum(p.numel() for p in module.parameters()) == op.params
    assert counter.get_total_flops() == 2 * op.macs
    assert fvcore_flops(module, x) == op.flops


def test_every_block_of_every_space_is_a_tested_op() -> None:
    covered = 0
    for name in spaces.list_spaces():
        space = spaces.get_space(name)
        for layer in space.layers:
            for block in layer.blocks:
                op = space.op(layer.index, block.name)
                assert TESTED_OPS.get(op.key) == op, f"{name} layer {layer.index} {block.name}: {op.key} untested"
                covered += 1
        for fixed in space.fixed_layers:
            assert TESTED_OPS.get(fixed.op.key) == fixed.op, f"{name} fixed layer {fixed.name} untested"
    expected = sum(len(layer.blocks) for n in spaces.list_spaces() for layer in spaces.get_space(n).layers)
    assert covered == expected > 0


def test_op_keys_name_ops_uniquely() -> None:
    """Two different ops never share a key (the key is what the database and the predictors store)."""
    by_key: dict[str, Op] = {}
    for name in spaces.list_spaces():
        space = spaces.get_space(name)
        for layer in space.layers:
            for block in layer.blocks:
                op = layer.op(block)
                assert by_key.setdefault(op.key, op) == op, f"{op.key} names two different ops"


@pytest.mark.parametrize("op", [op for op in TESTED_OPS.values() if op.is_bottleneck], ids=lambda op: op.key)
def test_bottleneck_block_splits_inside_after_depthwise_conv(op: Op) -> None:
    module = build_op(op).eval()
    assert isinstance(module, InvertedResidual)
    x = _example_input(op)
    inner = module.front(x)
    assert tuple(inner.shape) == (1, op.mid, op.out_h, op.out_h)
    assert inner.numel() == op.payload < op.cout * op.out_h * op.out_h
    torch.testing.assert_close(module.back(inner), module(x))


def test_identity_ops_are_free_and_return_their_input() -> None:
    identities = [op for op in TESTED_OPS.values() if op.is_identity]
    assert {op.kind for op in identities} == {"skip", "identity"}
    for op in identities:
        x = _example_input(op)
        assert build_op(op)(x) is x
        assert (op.macs, op.flops, op.params) == (0, 0, 0)
