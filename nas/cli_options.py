"""Command-line options derived from a pydantic model's fields: one declaration of every setting.

A field ``bandwidth_mbps`` becomes ``--bandwidth-mbps`` with the field's type, description, default and
bounds; a nested model's fields are prefixed (``gradient.arch_lr`` -> ``--gradient-arch-lr``); a
``Literal`` is a choice; a ``bool`` is a ``--x/--no-x`` switch; a tuple of floats or ints is a comma list; a
``dict`` is a repeatable ``KEY=VALUE`` (values read as YAML). Options default to "not given", so the
model's own defaults (or a config file's values) apply.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
import typer
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

Reader = Callable[[Path], Any]


def float_list(text: str) -> tuple[float, ...]:
    """``0,0.1,0.2`` -> (0.0, 0.1, 0.2)."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected numbers separated by commas") from None


def int_list(text: str) -> tuple[int, ...]:
    """``32,64`` -> (32, 64)."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected whole numbers separated by commas") from None


def key_value(text: str) -> tuple[str, Any]:
    """``alpha=1.5`` -> ("alpha", 1.5), the value read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"{text!r}: expected KEY=VALUE")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise typer.BadParameter(f"{text!r}: the value is not valid YAML") from None


_METAVARS: dict[Callable[[str], Any], str] = {float_list: "X,Y,...", int_list: "N,M,...", key_value: "KEY=VALUE"}


@dataclass(frozen=True)
class FieldOption:
    """One leaf field of the model as a command-line option."""

    path: tuple[str, ...]  # ("gradient", "arch_lr")
    field: FieldInfo
    default: Any
    reader: Reader | None = None

    @property
    def param(self) -> str:
        return "_".join(self.path)

    @property
    def flag(self) -> str:
        return "--" + self.param.replace("_", "-")

    def parameter(self) -> inspect.Parameter:
        """The typer parameter: type, help and shown default all from the field."""
        kind, parser = self._type()
        decl = f"{self.flag}/--no-{self.flag[2:]}" if kind is bool else self.flag
        option = typer.Option(
            decl, help=self.help(), show_default=self._shown_default(), parser=parser,
            metavar=_METAVARS[parser] if parser is not None else None,
        )
        return inspect.Parameter(
            self.param, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, option]
        )

    def help(self) -> str:
        text = self.field.description or ""
        bounds = [f"{symbol} {getattr(m, attr)}" for m in self.field.metadata
                  for cls, attr, symbol in _BOUNDS if isinstance(m, cls)]
        if bounds:
            text += f" [{', '.join(bounds)}]"
        if self.reader is not None:
            text = f"FILE (YAML): {text}"
        return text

    def _shown_default(self) -> bool | str:
        if self.default is None or self.default == {}:
            return False
        if isinstance(self.default, tuple):
            return ",".join(f"{v:g}" for v in self.default)
        if isinstance(self.default, bool):
            return f"{'' if self.default else 'no-'}{self.flag[2:]}"
        return str(self.default)

    def _type(self) -> tuple[Any, Callable[[str], Any] | None]:
        if self.reader is not None:
            return Path, None
        annotation = _without_none(self.field.annotation)
        origin = typing.get_origin(annotation)
        if origin is Literal:
            return annotation, None
        if origin is tuple and typing.get_args(annotation) == (float, ...):
            return str, float_list
        if origin is tuple and typing.get_args(annotation) == (int, ...):
            return str, int_list
        if origin is dict:
            return list[str], key_value
        if annotation in (str, int, float, bool):
            return annotation, None
        raise TypeError(f"field {'.'.join(self.path)} of type {annotation!r} has no command-line form")

    def value(self, given: Any) -> Any:
        """The field's value from what the option parsed (``None``: not given)."""
        if given is None or given == []:
            return None
        if self.reader is not None:
            return self.reader(Path(given))
        if isinstance(given, list):
            return dict(given)
        return given


_BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="), (annotated_types.Lt, "lt", "<"),
           (annotated_types.Le, "le", "<="))


def _without_none(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _submodel(annotation: Any) -> type[BaseModel] | None:
    annotation = _without_none(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def field_options(
    model: type[BaseModel], *, readers: Mapping[str, Reader] | None = None, defaults: BaseModel | None = None,
    prefix: tuple[str, ...] = (),
) -> Iterator[FieldOption]:
    """Every leaf field of ``model`` (nested models flattened with their field name as prefix).

    ``readers`` maps a field name to a function reading its value from a file named on the command line.
    """
    defaults = defaults if defaults is not None else model.model_construct()
    for name, field in model.model_fields.items():
        default = getattr(defaults, name)
        sub = _submodel(field.annotation)
        if sub is not None:
            yield from field_options(sub, defaults=default, prefix=(*prefix, name))
        else:
            yield FieldOption((*prefix, name), field, default, (readers or {}).get(name) if not prefix else None)


def given_values(options: list[FieldOption], parsed: Mapping[str, Any]) -> dict[str, Any]:
    """The nested values of the options given on the command line, e.g. {"gradient": {"arch_lr": 0.01}}."""
    values: dict[str, Any] = {}
    for option in options:
        value = option.value(parsed.get(option.param))
        if value is None:
            continue
        *parents, leaf = option.path
        target = values
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return values


def merge(base: Mapping[str, Any], override: Mapping[str, Any], options: list[FieldOption]) -> dict[str, Any]:
    """``override`` over ``base``: a nested model's fields one by one, any other field as a whole."""
    nested = {option.path[0] for option in options if len(option.path) > 1}
    merged = dict(base)
    for key, value in override.items():
        if key in nested and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def with_options(
    function: Callable[..., Any], options: list[FieldOption]
) -> Callable[..., Any]:
    """``function`` with the options' parameters added to its signature (what typer reads)."""
    signature = inspect.signature(function, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    clash = {p.name for p in own} & {o.param for o in options}
    if clash:
        raise TypeError(f"options {sorted(clash)} are both fields and parameters of {function.__name__}")
    parameters = [*[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own], *[o.parameter() for o in options]]
    function.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    function.__annotations__ = {p.name: p.annotation for p in parameters}
    return function
