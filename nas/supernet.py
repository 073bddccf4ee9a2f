"""The one-shot supernet of the fbnet spaces, the split network, and the link: payload codec and packet loss.

Every candidate op is built by ``spaces.modules.build_op`` from the space's own ``Op`` definitions, so
the path of one architecture holds exactly the modules (and parameter names, up to a prefix) of
``spaces.modules.build_network(arch)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import nn

from spaces import Architecture, SearchSpace, get_space
from spaces.codecs import Codec, get_codec, quantize_ste
from spaces.modules import build_op, build_parts

SUPERNET_FAMILIES = ("fbnet",)


def packet_loss(
    x: torch.Tensor, p: float, *, generator: torch.Generator | None = None, scale: bool = False
) -> torch.Tensor:
    """Zero each element with probability ``p``: what the tail sees when a lossy link drops it.

    Active in training and evaluation alike (it models the link, not a regularizer). By default the
    kept elements are not rescaled, since a receiver only sees zeros where data went missing;
    ``scale=True`` divides by 1 - p as ``torch.nn.functional.dropout`` does.
    """
    if p <= 0:
        return x
    if p >= 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    kept = x * keep
    return kept / (1 - p) if scale else kept


def over_link(
    x: torch.Tensor, codec: Codec | str | int | None, p: float, *, generator: torch.Generator | None = None,
    scale: bool = False,
) -> torch.Tensor:
    """What the next device receives of the payload ``x``: coded as the link sends it (straight-through, each
    sample with its own scale), then elements lost with probability ``p`` are zeros."""
    sent = x if codec is None else quantize_ste(x, codec)
    return packet_loss(sent, p, generator=generator, scale=scale)


def replace_classifier(space: SearchSpace, num_classes: int | None) -> nn.Linear | None:
    """A fresh classifier for ``num_classes`` (the spaces' FC has the space's class count), or None to keep it."""
    fc = space.fixed("fc").op
    return None if num_classes in (None, fc.cout) else nn.Linear(fc.cin, num_classes)


class Supernet(nn.Module):
    """All candidate ops of every layer; a forward pass runs one architecture split at one point.

    ``blocks`` are per-layer indices into ``space.layers[i].blocks``. Split point k cuts after the
    fixed prefix (k = 0) or after layer k - 1; when that layer runs a bottleneck block, the cut (and
    the packet loss) falls inside it, right after its depthwise conv.
    """

    families: tuple[str, ...] = SUPERNET_FAMILIES  # subclasses may cover more (nas.gates.GatedSupernet: mbconv)

    def __init__(self, space: SearchSpace | str, num_classes: int | None = None) -> None:
        super().__init__()
        self.space = get_space(space) if isinstance(space, str) else space
        if self.space.family not in self.families:
            raise ValueError(
                f"no supernet for space {self.space.name!r} (family {self.space.family!r}); "
                f"supported families: {', '.join(self.families)}"
            )
        self.prefix = nn.ModuleDict({f.name: build_op(f.op) for f in self.space.prefix})
        self.layers = nn.ModuleList(
            nn.ModuleList(build_op(layer.op(block)) for block in layer.blocks) for layer in self.space.layers
        )
        self.suffix = nn.ModuleDict({f.name: build_op(f.op) for f in self.space.suffix})
        classifier = replace_classifier(self.space, num_classes)
        if classifier is not None:
            self.suffix["fc"] = classifier
        self.num_classes = num_classes or self.space.num_classes
        self._bottleneck = [[layer.op(b).is_bottleneck for b in layer.blocks] for layer in self.space.layers]

    @property
    def categories(self) -> list[int]:
        """Number of candidate blocks per layer."""
        return [len(layer.blocks) for layer in self.space.layers]

    def op(self, layer: int, block: int) -> nn.Module:
        """The candidate module of ``block`` at ``layer``."""
        # ModuleList indexes to a plain Module; every entry of self.layers is itself a ModuleList
        return cast(nn.ModuleList, self.layers[layer])[block]

    def architecture(self, blocks: Sequence[int] | np.ndarray, split: int | None = None) -> Architecture:
        names = tuple(layer.blocks[int(b)].name for layer, b in zip(self.space.layers, blocks, strict=True))
        return Architecture(self.space, names, () if split is None else (int(split),))

    def indices(self, arch: Architecture) -> list[int]:
        """Per-layer block indices of ``arch``."""
        return [layer.block_names.index(name) for layer, name in zip(self.space.layers, arch.blocks, strict=True)]

    def _split_inside(self, blocks: Sequence[int] | np.ndarray, split: int) -> bool:
        return split > 0 and self._bottleneck[split - 1][int(blocks[split - 1])]

    def head(self, x: torch.Tensor, blocks: Sequence[int] | np.ndarray, split: int) -> torch.Tensor:
        """The part before the split: prefix and layers 0..split-1 (only the front of a split bottleneck)."""
        for module in self.prefix.values():
            x = module(x)
        for i in range(split):
            op = self.op(i, int(blocks[i]))
            x = op.get_submodule("front")(x) if i == split - 1 and self._split_inside(blocks, split) else op(x)
        return x

    def tail(self, x: torch.Tensor, blocks: Sequence[int] | np.ndarray, split: int) -> torch.Tensor:
        """The part after the split, through the classifier."""
        if self._split_inside(blocks, split):
            x = self.op(split - 1, int(blocks[split - 1])).get_submodule("back")(x)
        for i in range(split, len(self.layers)):
            x = self.op(i, int(blocks[i]))(x)
        for module in self.suffix.values():
            x = module(x)
        return x

    def forward(
        self, x: torch.Tensor, blocks: Sequence[int], split: int, drop: float = 0.0, *,
        generator: torch.Generator | None = None, scale: bool = False, codec: Codec | str | None = None,
    ) -> torch.Tensor:
        z = self.head(x, blocks, split)
        return self.tail(over_link(z, codec, drop, generator=generator, scale=scale), blocks, split)

    def path_names(self, blocks: Sequence[int]) -> dict[str, str]:
        """Supernet module prefix -> the name of the same module in ``build_network(arch)``."""
        names = {f"prefix.{f.name}.": f"{f.name}." for f in self.space.prefix}
        names |= {f"layers.{i}.{int(b)}.": f"layer{i}." for i, b in enumerate(blocks)}
        names |= {f"suffix.{f.name}.": f"{f.name}." for f in self.space.suffix}
        return names

    def subnet_state_dict(self, blocks: Sequence[int]) -> dict[str, torch.Tensor]:
        """The weights of one path, named as in ``build_network(arch)``."""
        names = self.path_names(blocks)
        out = {}
        for key, value in self.state_dict().items():
            for ours, theirs in names.items():
                if key.startswith(ours):
                    out[theirs + key[len(ours) :]] = value
        return out

    def load_subnet(self, blocks: Sequence[int], state_dict: dict[str, torch.Tensor]) -> None:
        """Copy the weights of a stand-alone network (``build_network`` names) into this path."""
        names = {theirs: ours for ours, theirs in self.path_names(blocks).items()}
        mapped = {}
        for key, value in state_dict.items():
            prefix = key[: key.index(".") + 1]
            if prefix not in names:
                raise KeyError(f"{key!r} does not belong to the path {list(blocks)}")
            mapped[names[prefix] + key[len(prefix) :]] = value
        expected = {k for k in self.state_dict() if any(k.startswith(p) for p in names.values())}
        if set(mapped) != expected:
            raise KeyError(f"state dict does not match the path: missing {sorted(expected - set(mapped))[:5]}")
        self.load_state_dict(mapped, strict=False)


class SplitNetwork(nn.Module):
    """One architecture cut at its split point(s) into parts (``spaces.modules.build_parts``), one per device.

    Between two parts the payload goes over a link: coded with that link's codec (``codecs[i]`` after part
    i, float32 by default) and, when ``drop`` is given, with that share of its elements lost, as the
    deployed model sees it.
    """

    def __init__(
        self, arch: Architecture, num_classes: int | None = None,
        codecs: Sequence[Codec | str | int] | None = None,
    ) -> None:
        super().__init__()
        if not arch.splits:
            raise ValueError(f"a split network needs at least one split point: {arch}")
        self.arch = arch
        parts = build_parts(arch)
        classifier = replace_classifier(arch.space, num_classes)
        if classifier is not None:
            parts[-1].fc = classifier
        self.num_classes = num_classes or arch.space.num_classes
        self.parts = nn.ModuleList(parts)
        codecs = ["float32"] * len(arch.splits) if codecs is None else list(codecs)
        if len(codecs) != len(arch.splits):
            raise ValueError(f"{len(arch.splits)} split points need {len(arch.splits)} codecs, got {len(codecs)}")
        self.codecs = tuple(get_codec(c) for c in codecs)

    @property
    def head(self) -> nn.Module:
        return self.parts[0]

    @property
    def tail(self) -> nn.Module:
        return self.parts[-1]

    def forward(
        self, x: torch.Tensor, drop: float = 0.0, *, generator: torch.Generator | None = None, scale: bool = False
    ) -> torch.Tensor:
        x = self.parts[0](x)
        for codec, part in zip(self.codecs, self.parts[1:], strict=True):
            x = part(over_link(x, codec, drop, generator=generator, scale=scale))
        return x

    def load_network_state(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load the weights of ``build_network(arch)`` (or ``Supernet.subnet_state_dict``) into the parts."""
        own = self.state_dict()
        mapped = {}
        for key, value in state_dict.items():
            top, _, rest = key.partition(".")
            names = [f"parts.{i}.{name}" for name in (key, f"{top}_{rest}") for i in range(len(self.parts))]
            found = [name for name in names if name in own]
            if not found:
                raise KeyError(f"{key!r} has no place in the split network of {self.arch}")
            mapped[found[0]] = value
        self.load_state_dict(mapped, strict=True)
