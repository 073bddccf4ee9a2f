"""The registered search spaces (DESIGN.md section 2)."""

from __future__ import annotations

from spaces.blocks import BOTTLENECK_BLOCKS, FBNET_BLOCKS, MBCONV_BLOCKS, Block
from spaces.ops import Op
from spaces.space import FixedLayer, SearchSpace, register_space, stage_layers

FBNET_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
FBNET_DEPTHS = (1, 4, 4, 4, 4, 4, 1)
MBCONV_CHANNELS = (24, 40, 80, 96, 192, 320)
MBCONV_DEPTHS = (4, 4, 4, 4, 4, 1)


def _fbnet(
    name: str, *, input_size: int, stem_stride: int, strides: tuple[int, ...], head: int, classes: int,
    blocks: tuple[Block, ...], description: str,
) -> SearchSpace:
    h = -(-input_size // stem_stride)
    layers = stage_layers(
        h=h, cin=16, channels=FBNET_CHANNELS, depths=FBNET_DEPTHS, strides=strides,
        blocks_for=lambda cin, cout, s: blocks, act="relu",
    )
    last = layers[-1]
    h_last = -(-last.h // last.stride)
    return SearchSpace(
        name=name, family="fbnet", input_size=input_size, num_classes=classes,
        prefix=(FixedLayer("stem", Op("convnorm", input_size, 3, 16, stem_stride, 3)),),
        layers=layers,
        suffix=(
            FixedLayer("head", Op("convnorm", h_last, last.cout, head, 1, 1)),
            FixedLayer("pool", Op("pool", h_last, head, head)),
            FixedLayer("fc", Op("fc", 1, head, classes)),
        ),
        description=description,
    )


@register_space("fbnet-cifar100")
def fbnet_cifar100() -> SearchSpace:
    return _fbnet(
        "fbnet-cifar100", input_size=32, stem_stride=1, strides=(1, 1, 2, 2, 1, 2, 1), head=1504,
        classes=100, blocks=FBNET_BLOCKS,
        description="FBNet space of HW-NAS-Bench, CIFAR-100 variant: 22 layers x 9 blocks",
    )


@register_space("fbnet-extended-cifar100")
def fbnet_extended_cifar100() -> SearchSpace:
    return _fbnet(
        "fbnet-extended-cifar100", input_size=32, stem_stride=1, strides=(1, 1, 2, 2, 1, 2, 1), head=1504,
        classes=100, blocks=FBNET_BLOCKS + BOTTLENECK_BLOCKS,
        description="fbnet-cifar100 plus six bottleneck blocks (expansion 1/2, 1/4, 1/8) that can be split inside",
    )


@register_space("fbnet-imagenet")
def fbnet_imagenet() -> SearchSpace:
    return _fbnet(
        "fbnet-imagenet", input_size=224, stem_stride=2, strides=(1, 2, 2, 2, 1, 2, 1), head=1984,
        classes=1000, blocks=FBNET_BLOCKS,
        description="FBNet space of HW-NAS-Bench, ImageNet variant: 22 layers x 9 blocks",
    )


def _mbconv_blocks(cin: int, cout: int, stride: int) -> tuple[Block, ...]:
    if stride == 1 and cin == cout:
        return MBCONV_BLOCKS
    return tuple(b for b in MBCONV_BLOCKS if b.kind == "mbconv" and not b.residual)


def _mbconv(name: str, *, input_size: int, first_stride: int, classes: int, description: str) -> SearchSpace:
    h = -(-input_size // first_stride)
    layers = stage_layers(
        h=h, cin=16, channels=MBCONV_CHANNELS, depths=MBCONV_DEPTHS, strides=(first_stride, 2, 2, 1, 2, 1),
        blocks_for=_mbconv_blocks, act="relu6",
    )
    last = layers[-1]
    h_last = -(-last.h // last.stride)
    return SearchSpace(
        name=name, family="mbconv", input_size=input_size, num_classes=classes,
        prefix=(
            FixedLayer("stem", Op("convnorm", input_size, 3, 32, first_stride, 3, act="relu6")),
            FixedLayer("first", Op("mbconv", h, 32, 16, 1, 3, act="relu6")),
        ),
        layers=layers,
        suffix=(
            FixedLayer("head", Op("convnorm", h_last, last.cout, 1280, 1, 1, act="relu6")),
            FixedLayer("pool", Op("pool", h_last, 1280, 1280)),
            FixedLayer("fc", Op("fc", 1, 1280, classes)),
        ),
        description=description,
    )


@register_space("mbconv-imagenet")
def mbconv_imagenet() -> SearchSpace:
    return _mbconv(
        "mbconv-imagenet", input_size=224, first_stride=2, classes=1000,
        description="ProxylessNAS / MobileNetV2 macro-architecture, 21 layers of MBConv K3/5/7 x E3/6",
    )


@register_space("mbconv-cifar100")
def mbconv_cifar100() -> SearchSpace:
    return _mbconv(
        "mbconv-cifar100", input_size=32, first_stride=1, classes=100,
        description="mbconv-imagenet at input 32, first conv and first stage at stride 1",
    )
