"""Every registered op kind against its contract: the parts it lists are the layers its module runs.

For every op of every space, grouped by kind, forward hooks record what the built module actually runs
(convs and linear layers with their shapes, batch-norm, activation, channel-shuffle and pooling elements,
the residual add); it must be exactly the kind's ``parts``, and the module's parameters and output shape
the op's. A new kind is covered as soon as a space uses it.
"""

from __future__ import annotations

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

import spaces
from predictor.features import cost_terms
from profiler.hwnasbench import benchmark_key
from spaces import Op, UnknownOpKindError
from spaces.kinds import OP_KINDS, Conv, Elementwise, OpKind, Part, register_op_kind
from spaces.modules import ChannelShuffle, InvertedResidual, build_op, conv_bn


def _ops_by_kind() -> dict[str, list[Op]]:
    ops: dict[str, Op] = {}
    for name in spaces.list_spaces():
        ops.update(spaces.get_space(name).distinct_ops)
    by_kind: dict[str, list[Op]] = {}
    for op in ops.values():
        by_kind.setdefault(op.kind, []).append(op)
    return by_kind


OPS_BY_KIND = _ops_by_kind()


def test_every_registered_kind_is_used_by_a_space() -> None:
    assert set(OPS_BY_KIND) == set(OP_KINDS)


def test_registration_order_keeps_the_one_hot_feature_columns() -> None:
    """Stored gbdt predictors read the kind features by position: new kinds go after these."""
    assert list(OP_KINDS)[:7] == ["conv", "skip", "mbconv", "identity", "convnorm", "pool", "fc"]


def _what_the_module_runs(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, list]]:
    ran: dict[str, list] = {"convs": [], "bn": [], "activation": [], "channel_shuffle": [], "average_pool": []}

    def record(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        (x,) = inputs
        if isinstance(layer, nn.Conv2d):
            ran["convs"].append(
                (layer.in_channels, layer.out_channels, layer.kernel_size[0], layer.groups, x.shape[-1],
                 output.shape[-1], False)
            )
        elif isinstance(layer, nn.Linear):
            ran["convs"].append((layer.in_features, layer.out_features, 1, 1, 1, 1, True))
        elif isinstance(layer, nn.BatchNorm2d):
            ran["bn"].append(output.numel())
        elif isinstance(layer, nn.ReLU | nn.ReLU6):
            ran["activation"].append(output.numel())
        elif isinstance(layer, ChannelShuffle):
            ran["channel_shuffle"].append(output.numel())
        elif isinstance(layer, nn.AdaptiveAvgPool2d):
            ran["average_pool"].append(x.numel())

    handles = [m.register_forward_hook(record) for m in module.modules()]
    with torch.no_grad():
        y = module(x)
    for handle in handles:
        handle.remove()
    return y, ran


def assert_module_runs_the_parts(op: Op) -> None:
    module = build_op(op).eval()
    x = torch.randn(1, *op.input_shape)
    y, ran = _what_the_module_runs(module, x)
    elementwise = [part for part in op.parts if isinstance(part, Elementwise)]

    assert tuple(y.shape) == (1, *op.output_shape), op.key
    assert sum(p.numel() for p in module.parameters()) == op.params, op.key
    assert ran["convs"] == [(c.cin, c.cout, c.kernel, c.groups, c.h_in, c.h_out, c.linear) for c in op.convs]
    assert sum(ran["bn"]) == op.bn_elements, op.key
    for name in ("activation", "channel_shuffle", "average_pool"):
        assert ran[name] == [part.elements for part in elementwise if part.name == name], (op.key, name)
    residual = isinstance(module, InvertedResidual) and module.residual
    assert [part.name for part in elementwise].count("residual_add") == int(residual), op.key
    assert op.key.startswith(f"{op.kind}_h{op.h}_cin{op.cin}_cout{op.cout}")
    assert op.is_identity == (not op.parts) == isinstance(module, nn.Identity), op.key
    assert op.parts[: len(op.front_parts)] == op.front_parts, op.key
    assert (op.front_parts == op.parts) == (not op.is_bottleneck) == (op.front_share == 1.0), op.key


@pytest.mark.parametrize("kind", list(OP_KINDS))
def test_the_module_runs_exactly_the_kinds_parts(kind: str) -> None:
    for op in OPS_BY_KIND[kind]:
        assert_module_runs_the_parts(op)


class _ConvBN(OpKind):
    """A kind written for this test only: conv and batch norm without activation."""

    def parts(self, op: Op) -> tuple[Part, ...]:
        return (Conv(op.cin, op.cout, op.kernel, op.groups, op.h, op.out_h),)

    def module(self, op: Op) -> nn.Module:
        return nn.Sequential(*conv_bn(op.cin, op.cout, op.kernel, stride=op.stride, groups=op.groups))

    def key_parts(self, op: Op) -> list[str]:
        return [f"k{op.kernel}", f"s{op.stride}", f"g{op.groups}"]


def test_a_new_kind_is_one_class(monkeypatch: pytest.MonkeyPatch) -> None:
    kind = _ConvBN()
    kind.name = "convbn"
    monkeypatch.setitem(OP_KINDS, "convbn", kind)
    op = Op("convbn", 9, 16, 32, 2, 3, groups=2)

    assert (op.key, op.output_shape, op.payload) == ("convbn_h9_cin16_cout32_k3_s2_g2", (32, 5, 5), 800)
    assert_module_runs_the_parts(op)
    terms = cost_terms(op)
    assert terms["dense_mac"] == op.macs == 8 * 32 * 9 * 25 and terms["torch_op"] == 2
    with pytest.raises(ValueError, match="HW-NAS-Bench has no key for op kind 'convbn'"):
        benchmark_key(op)


BOTTLENECKS = [op for ops in OPS_BY_KIND.values() for op in ops if op.is_bottleneck]


def test_the_spaces_have_bottleneck_ops() -> None:
    assert len(BOTTLENECKS) > 10 and {op.kind for op in BOTTLENECKS} == {"conv"}


@pytest.mark.parametrize("op", BOTTLENECKS, ids=lambda op: op.key)
def test_front_share_is_the_flops_share_of_the_modules_front(op: Op) -> None:
    module = build_op(op).train()
    assert isinstance(module, InvertedResidual)
    x = torch.randn(1, *op.input_shape)
    flops = {}
    for name, part in (("front", module.front), ("whole", module)):
        analysis = FlopCountAnalysis(part, (x,))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        flops[name] = analysis.total()
    assert flops["whole"] == op.flops
    assert sum(part.flops for part in op.front_parts) == flops["front"]
    assert op.front_share == flops["front"] / flops["whole"] < 1


def test_parts_cost_what_conv_and_elementwise_layers_cost() -> None:
    conv = Conv(32, 64, 3, 2, 8, 4)
    weights = 32 // 2 * 64 * 3 * 3
    assert (conv.weights, conv.macs, conv.params, conv.bn_elements) == (weights, weights * 16, weights + 128, 64 * 16)
    assert conv.flops == conv.macs + 5 * conv.bn_elements and conv.conv_type == "dense"
    linear = Conv(1504, 100, 1, 1, 1, 1, linear=True)
    assert (linear.params, linear.bn_elements, linear.flops, linear.conv_type) == (1504 * 100 + 100, 0, 150400, "dense")
    assert Conv(16, 16, 5, 16, 8, 8).conv_type == "depthwise"
    assert (Conv(16, 32, 1, 2, 8, 8).conv_type, Conv(16, 32, 1, 1, 8, 8).conv_type) == ("grouped_conv1x1", "conv1x1")


def test_an_unknown_kind_is_refused_naming_the_registered_ones() -> None:
    with pytest.raises(UnknownOpKindError, match="unknown op kind 'lstm'; allowed: conv, skip, mbconv"):
        Op("lstm", 8, 16, 16)


def test_the_registry_refuses_a_second_kind_of_the_same_name() -> None:
    with pytest.raises(ValueError, match="op kind 'conv' is already registered"):

        @register_op_kind("conv")
        class Conv2(OpKind):
            pass
