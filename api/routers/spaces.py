"""``/spaces``: the search spaces the service knows, with layers, blocks and split points."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.errors import ERROR_RESPONSES, not_found
from api.schemas import SpacePublic, SpaceSummary
from spaces import FixedLayer, SearchSpace, SpaceError, get_space, list_spaces

router = APIRouter(prefix="/spaces", tags=["spaces"])


def _summary(space: SearchSpace) -> dict:
    return {
        "name": space.name, "family": space.family, "input_size": space.input_size,
        "num_classes": space.num_classes, "layers": len(space.layers), "blocks": [b.name for b in space.blocks],
        "split_points": len(space.split_points),
    }


def _fixed(layer: FixedLayer) -> dict:
    op = layer.op
    return {"name": layer.name, "kind": op.kind, "h": op.h, "cin": op.cin, "cout": op.cout, "stride": op.stride}


@router.get("", response_model=list[SpaceSummary])
async def get_spaces() -> list[dict]:
    """Every registered search space."""
    return [_summary(get_space(name)) for name in list_spaces()]


@router.get("/{space}", response_model=SpacePublic, responses=ERROR_RESPONSES)
async def get_space_detail(
    space: Annotated[str, Path(description="search space name", examples=["fbnet-cifar100"])],
) -> dict:
    """Layers (shape and candidate blocks), fixed layers, and split points of ``space``."""
    try:
        found = get_space(space)
    except SpaceError as exc:
        raise not_found(["path", "space"], str(exc)) from None
    split_points = [{"k": 0, "after": found.prefix[-1].name, "payload_elements": found.prefix[-1].op.payload}]
    split_points += [
        {"k": layer.index + 1, "after": f"layer {layer.index}",
         "payload_elements": max(layer.op(b).payload for b in layer.blocks)}
        for layer in found.layers
    ]
    return _summary(found) | {
        "description": found.description,
        "prefix": [_fixed(f) for f in found.prefix],
        "layer_table": [
            {"index": layer.index, "h": layer.h, "cin": layer.cin, "cout": layer.cout, "stride": layer.stride,
             "blocks": list(layer.block_names)}
            for layer in found.layers
        ],
        "suffix": [_fixed(f) for f in found.suffix],
        "split_point_table": split_points,
    }
