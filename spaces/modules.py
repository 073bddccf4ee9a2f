"""Torch modules for every op of every space, and whole (optionally split) architectures.

Each op kind builds its module (``spaces.kinds``) from the layers below, the same ``Op`` definitions
its analytic costs are summed over, so shapes, parameters and FLOPs agree.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from spaces.arch import Architecture
from spaces.ops import Activation, Op


def activation_module(act: Activation) -> nn.Module:
    return nn.ReLU6(inplace=True) if act == "relu6" else nn.ReLU(inplace=True)


def conv_bn(cin: int, cout: int, kernel: int, *, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class InvertedResidual(nn.Module):
    """Expand 1x1 (optional), depthwise KxK, project 1x1; the FBNet block and the MBConv block.

    ``front`` runs up to and including the depthwise conv, ``back`` the projection, so a network can
    be split inside the block (the extended space's bottleneck blocks).
    """

    def __init__(
        self, *, cin: int, cout: int, kernel: int, expansion: float, stride: int, groups: int = 1,
        residual: bool = False, act: Activation = "relu", expand: bool = True,
    ) -> None:
        super().__init__()
        mid = int(cin * expansion)
        front: list[nn.Module] = []
        if expand:
            front += [*conv_bn(cin, mid, 1, groups=groups), activation_module(act)]
            if groups > 1:
                front.append(ChannelShuffle(groups))
        front += [*conv_bn(mid, mid, kernel, stride=stride, groups=mid), activation_module(act)]
        self.front = nn.Sequential(*front)
        self.back = nn.Sequential(*conv_bn(mid, cout, 1, groups=groups))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.back(self.front(x))
        return x + y if self.residual else y


def build_op(op: Op) -> nn.Module:
    """The torch module computing ``op`` (input shape ``op.input_shape`` plus a batch dimension)."""
    return op.op_kind.module(op)


def _named_ops(arch: Architecture) -> list[tuple[str, Op]]:
    space = arch.space
    return (
        [(f.name, f.op) for f in space.prefix]
        + [(f"layer{i}", op) for i, op in enumerate(arch.layer_ops)]
        + [(f.name, f.op) for f in space.suffix]
    )


def build_network(arch: Architecture) -> nn.Sequential:
    """The whole architecture as one network (split points ignored)."""
    return nn.Sequential(OrderedDict((name, build_op(op)) for name, op in _named_ops(arch)))


def build_parts(arch: Architecture) -> list[nn.Sequential]:
    """The architecture cut at its split points: one module per device, run one after another.

    Split point k cuts after the fixed prefix (k = 0) or after layer k - 1; when that layer is a
    bottleneck block, the cut falls inside it, after its depthwise conv.
    """
    network = build_network(arch)
    n_prefix = len(arch.space.prefix)
    parts: list[OrderedDict[str, nn.Module]] = [OrderedDict()]
    cut_after = {n_prefix + k - 1: k for k in arch.splits}
    for position, (name, module) in enumerate(network.named_children()):
        k = cut_after.get(position)
        if k is not None and k > 0 and arch.layer_ops[k - 1].is_bottleneck:
            assert isinstance(module, InvertedResidual)
            parts[-1][f"{name}_front"] = module.front
            parts.append(OrderedDict([(f"{name}_back", module.back)]))
            continue
        parts[-1][name] = module
        if k is not None:
            parts.append(OrderedDict())
    return [nn.Sequential(part) for part in parts]
