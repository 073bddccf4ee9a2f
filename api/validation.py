"""Checks of request values against the search spaces and the cached tables, with errors naming the field."""

from __future__ import annotations

from functools import cache

import numpy as np

from api.errors import Loc, invalid, many_invalid, not_found
from predictor.latency import DeviceLUT
from spaces import Architecture, SearchSpace, SpaceError, get_space


def space_or_error(name: str, loc: Loc) -> SearchSpace:
    try:
        return get_space(name)
    except SpaceError as exc:
        raise invalid(loc, str(exc)) from None


def op_error(space: str, layer: int, block: str) -> tuple[str, str] | None:
    """(field, message) of the first of space, layer, block that the spaces do not allow; None when all fit."""
    try:
        found = get_space(space)
    except SpaceError as exc:
        return "space", str(exc)
    try:
        found.layer(layer)
    except SpaceError as exc:
        return "layer", str(exc)
    try:
        found.block(block, layer)
    except SpaceError as exc:
        return "block", str(exc)
    return None


def check_op(space: str, layer: int, block: str, loc: Loc) -> None:
    """422 naming ``(*loc, field)`` unless ``block`` is a candidate at ``layer`` of ``space``."""
    error = op_error(space, layer, block)
    if error is not None:
        raise invalid([*loc, error[0]], error[1])


def unmeasured_message(lut: DeviceLUT, layer: int, block: str) -> str:
    return (
        f"block {block!r} at layer {layer} of {lut.space!r} has no latency in the {lut.predictor!r} table of "
        f"{lut.device!r} (never measured there); ask predictor=auto, flops-linear or gbdt instead"
    )


def architecture_or_message(text: str, space: SearchSpace, splits: int | None = None) -> Architecture | str:
    """The architecture ``text``, or the message saying what is wrong with it."""
    try:
        arch = Architecture.parse(text, space)
    except SpaceError as exc:
        return str(exc)
    if splits is not None and len(arch.splits) != splits:
        return f"expected {splits} split point(s) ('@k' or '@k1,k2,...'), got {len(arch.splits)}"
    return arch


def parse_architecture(text: str, space: SearchSpace, loc: Loc, *, splits: int | None = None) -> Architecture:
    """The architecture ``text``; 422 naming ``loc`` when malformed or with the wrong number of split points."""
    arch = architecture_or_message(text, space, splits)
    if isinstance(arch, str):
        raise invalid(loc, arch)
    return arch


def check_measured(arch: Architecture, lut: DeviceLUT, loc: Loc) -> None:
    """404 when the table has no value for one of ``arch``'s layers (a lookup table of an unprofiled op)."""
    for layer, block in enumerate(arch.blocks):
        if np.isnan(lut.table[layer, lut.column(block)]):
            raise not_found(loc, unmeasured_message(lut, layer, block))


@cache
def allowed_matrix(space_name: str, blocks: tuple[str, ...]) -> np.ndarray:
    """(layers, len(blocks)) booleans: block b is a candidate at layer l."""
    space = get_space(space_name)
    allowed = np.zeros((len(space.layers), len(blocks)), dtype=bool)
    for layer in space.layers:
        for name in layer.block_names:
            allowed[layer.index, blocks.index(name)] = True
    return allowed


def parse_split_architectures(
    texts: list[str], space: SearchSpace, blocks: tuple[str, ...], loc: Loc
) -> tuple[np.ndarray, np.ndarray]:
    """Block column indices (N, layers) and split points (N,) of many ``blocks@k`` strings at once.

    Canonical strings take a fast path of dictionary lookups; anything else goes through
    ``Architecture.parse``, whose message names the bad part. Every bad entry is reported at once.
    """
    n_layers = len(space.layers)
    column = {name: i for i, name in enumerate(blocks)}
    flat: list[int] = []
    splits: list[int] = []
    errors: dict[int, str] = {}
    for i, text in enumerate(texts):
        body, _, split = text.partition("@")
        names = body.split(",")
        if len(names) == n_layers and split.isascii() and split.isdigit() and all(name in column for name in names):
            flat += [column[name] for name in names]
            splits.append(int(split))
            continue
        arch = architecture_or_message(text, space, 1)
        if isinstance(arch, str):
            errors[i] = arch
            flat += [0] * n_layers
            splits.append(0)
        else:
            flat += [column[name] for name in arch.blocks]
            splits.append(arch.split)
    indices = np.array(flat, dtype=np.intp).reshape(len(texts), n_layers)
    split_array = np.array(splits, dtype=np.intp)
    allowed = allowed_matrix(space.name, blocks)[np.arange(n_layers), indices].all(axis=1)
    for i in np.flatnonzero(~allowed | (split_array > n_layers)).tolist():
        message = architecture_or_message(texts[i], space, 1)
        errors.setdefault(i, message if isinstance(message, str) else f"not an architecture of {space.name!r}")
    if errors:
        raise many_invalid([((*loc, i), errors[i]) for i in sorted(errors)])
    return indices, split_array
