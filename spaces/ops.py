"""Concrete operations (a block at a shape) with analytic shapes and costs.

Cost conventions (DESIGN.md section 4): ``macs`` counts the multiply-accumulates of every conv and
linear layer; ``flops`` is the reference convention, MACs plus 5 per batch-norm output element (what
fvcore reports for a block in training mode); ReLU, channel shuffle and the residual add count
nothing. ``params`` counts trainable parameters (BN affine included, running statistics excluded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Literal

from spaces.blocks import Block

OpKind = Literal["conv", "skip", "mbconv", "identity", "convnorm", "pool", "fc"]
Activation = Literal["relu", "relu6"]

BN_FLOPS_PER_ELEMENT = 5


@dataclass(frozen=True)
class Op:
    """One operation at a fixed input shape: a candidate block at a layer, or a fixed layer.

    ``h`` is the input resolution (square inputs); ``expansion`` multiplies the *input* channels.
    """

    kind: OpKind
    h: int
    cin: int
    cout: int
    stride: int = 1
    kernel: int = 1
    expansion: Fraction = Fraction(1)
    groups: int = 1
    residual: bool = False
    act: Activation = "relu"

    @classmethod
    def from_block(cls, block: Block, *, h: int, cin: int, cout: int, stride: int, act: Activation) -> Op:
        """The op that ``block`` becomes at a layer with this shape."""
        shortcut_possible = stride == 1 and cin == cout
        if block.kind == "skip":
            return cls("skip", h, cin, cout, stride, act="relu")
        if block.kind == "identity":
            return cls("identity", h, cin, cout, stride, act=act)
        residual = block.residual and shortcut_possible
        return cls(block.kind, h, cin, cout, stride, block.kernel, block.expansion, block.groups, residual, act)

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def out_h(self) -> int:
        if self.kind == "fc":
            return 1
        if self.kind == "pool":
            return 1
        return math.ceil(self.h / self.stride)

    @property
    def mid(self) -> int:
        """Channels inside the block (input channels times expansion)."""
        mid = self.cin * self.expansion
        if mid.denominator != 1:
            raise ValueError(f"expansion {self.expansion} does not divide {self.cin} input channels")
        return int(mid)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.cin,) if self.kind == "fc" else (self.cin, self.h, self.h)

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.kind in ("fc", "pool"):
            return (self.cout,)
        return (self.cout, self.out_h, self.out_h)

    @property
    def is_bottleneck(self) -> bool:
        return self.kind == "conv" and self.expansion < 1

    @property
    def payload(self) -> int:
        """Elements sent over the link when the network is split right after this op.

        For a bottleneck block (expansion below one) the split happens inside the block, after its
        depthwise conv, so the payload is the narrow ``mid``-channel tensor.
        """
        if self.is_bottleneck:
            return self.mid * self.out_h * self.out_h
        return math.prod(self.output_shape)

    @property
    def front_share(self) -> float:
        """Share of the op's FLOPs that runs before the link when the network is split right after it.

        1 for every op but a bottleneck block, which is split inside: its expand and depthwise convs run
        before the link, its projection after.
        """
        if not self.is_bottleneck:
            return 1.0
        hw_in, hw_out, mid = self.h * self.h, self.out_h * self.out_h, self.mid
        expand = self.cin * mid * hw_in + BN_FLOPS_PER_ELEMENT * mid * hw_in
        depthwise = mid * self.kernel * self.kernel * hw_out + BN_FLOPS_PER_ELEMENT * mid * hw_out
        return (expand + depthwise) / self.flops

    @property
    def is_identity(self) -> bool:
        return self.kind == "identity" or (self.kind == "skip" and self.stride == 1 and self.cin == self.cout)

    # -- costs ----------------------------------------------------------------------------------
    @property
    def macs(self) -> int:
        return self._cost_table["macs"]

    @property
    def flops(self) -> int:
        return self._cost_table["flops"]

    @property
    def params(self) -> int:
        return self._cost_table["params"]

    @property
    def bn_elements(self) -> int:
        return self._cost_table["bn"]

    @cached_property
    def _cost_table(self) -> dict[str, int]:
        hw_in, hw_out = self.h * self.h, self.out_h * self.out_h
        macs = params = bn = 0

        def conv(cin: int, cout: int, kernel: int, groups: int, hw: int) -> None:
            nonlocal macs, params, bn
            weights = cin // groups * cout * kernel * kernel
            macs += weights * hw
            params += weights + 2 * cout  # conv weight + BN affine
            bn += cout * hw

        if self.kind == "conv":
            conv(self.cin, self.mid, 1, self.groups, hw_in)
            conv(self.mid, self.mid, self.kernel, self.mid, hw_out)
            conv(self.mid, self.cout, 1, self.groups, hw_out)
        elif self.kind == "mbconv":
            if self.expansion != 1:
                conv(self.cin, self.mid, 1, 1, hw_in)
            conv(self.mid, self.mid, self.kernel, self.mid, hw_out)
            conv(self.mid, self.cout, 1, 1, hw_out)
        elif self.kind == "skip":
            if not self.is_identity:
                conv(self.cin, self.cout, 1, 1, hw_out)
        elif self.kind == "convnorm":
            conv(self.cin, self.cout, self.kernel, self.groups, hw_out)
        elif self.kind == "fc":
            macs = self.cin * self.cout
            params = self.cin * self.cout + self.cout
        elif self.kind == "pool":
            # fvcore counts one FLOP per input element of adaptive_avg_pool2d.
            return {"macs": 0, "flops": self.cin * hw_in, "params": 0, "bn": 0}
        return {"macs": macs, "flops": macs + BN_FLOPS_PER_ELEMENT * bn, "params": params, "bn": bn}

    @property
    def activation_elements(self) -> int:
        """Input plus output elements: a proxy for the op's memory traffic."""
        return math.prod(self.input_shape) + math.prod(self.output_shape)

    # -- identity -------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """Canonical string naming this op, shared by every layer (and space) with the same op."""
        parts = [self.kind, f"h{self.h}", f"cin{self.cin}", f"cout{self.cout}"]
        if self.kind in ("conv", "mbconv", "convnorm"):
            parts += [f"k{self.kernel}", f"s{self.stride}", f"e{self.expansion}", f"g{self.groups}"]
        elif self.kind == "skip":
            parts.append(f"s{self.stride}")
        if self.kind in ("conv", "mbconv"):
            parts.append("res" if self.residual else "nores")
        if self.kind in ("mbconv", "convnorm"):
            parts.append(self.act)
        return "_".join(parts)

    def features(self) -> dict[str, float]:
        """Numeric description of the op for regression models."""
        return {
            "h": self.h,
            "cin": self.cin,
            "cout": self.cout,
            "stride": self.stride,
            "kernel": self.kernel,
            "expansion": float(self.expansion),
            "groups": self.groups,
            "residual": float(self.residual),
            "macs": self.macs,
            "flops": self.flops,
            "params": self.params,
            "activations": self.activation_elements,
            "bn_elements": self.bn_elements,
        }
