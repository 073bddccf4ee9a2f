"""The layers an op is made of, and what each costs (DESIGN.md section 4); every op cost is a sum over them."""

from __future__ import annotations

from dataclasses import dataclass

# fvcore's count per batch-norm output element in training mode (the reference FLOPs convention).
BN_FLOPS_PER_ELEMENT = 5

# How the gbdt cost model tells convs apart: their speeds per multiply-accumulate differ.
CONV_TYPES = ("conv1x1", "grouped_conv1x1", "depthwise", "dense")


@dataclass(frozen=True)
class Conv:
    """A conv and its batch norm, or (``linear``) a linear layer with bias; inputs of ``h_in`` x ``h_in``."""

    cin: int
    cout: int
    kernel: int
    groups: int
    h_in: int
    h_out: int
    linear: bool = False

    @property
    def weights(self) -> int:
        return self.cin // self.groups * self.cout * self.kernel * self.kernel

    @property
    def macs(self) -> int:
        return self.weights * self.h_out * self.h_out

    @property
    def params(self) -> int:
        return self.weights + (self.cout if self.linear else 2 * self.cout)  # the bias, or the BN affine

    @property
    def bn_elements(self) -> int:
        return 0 if self.linear else self.cout * self.h_out * self.h_out

    @property
    def flops(self) -> int:
        return self.macs + BN_FLOPS_PER_ELEMENT * self.bn_elements

    @property
    def torch_ops(self) -> int:
        return 1 if self.linear else 2

    @property
    def elementwise(self) -> int:
        return self.bn_elements

    @property
    def io_elements(self) -> int:
        return self.cin * self.h_in * self.h_in + self.cout * self.h_out * self.h_out

    @property
    def conv_type(self) -> str:
        """One of ``CONV_TYPES``."""
        if self.linear:
            return "dense"
        if self.kernel == 1:
            return "conv1x1" if self.groups == 1 else "grouped_conv1x1"
        return "depthwise" if self.groups == self.cin == self.cout else "dense"


@dataclass(frozen=True)
class Elementwise:
    """A layer that multiplies no weights: an activation, a channel shuffle, a residual add, a pooling."""

    name: str
    elements: int
    torch_ops: int = 1
    flops: int = 0  # ReLU, shuffle and the residual add count nothing in the reference convention

    macs = params = bn_elements = 0

    @property
    def elementwise(self) -> int:
        return self.elements


Part = Conv | Elementwise


def activation(elements: int) -> Elementwise:
    return Elementwise("activation", elements)


def channel_shuffle(elements: int) -> Elementwise:
    return Elementwise("channel_shuffle", elements, torch_ops=3)  # view, transpose, reshape


def residual_add(elements: int) -> Elementwise:
    return Elementwise("residual_add", elements)


def average_pool(elements: int) -> Elementwise:
    """Global average pooling and flatten over ``elements`` inputs; fvcore counts one FLOP per input element."""
    return Elementwise("average_pool", elements, torch_ops=2, flops=elements)
