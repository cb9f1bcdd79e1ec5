"""Callback inputs as one dataclass per control group.

A callback takes its form (``run(form, request, progress)``), so tests build it by field name. :func:`handler` is
what gradio calls instead: its parameters are the form's fields, filled through ``inputs_kwargs`` (see
:func:`named_inputs`), so the API keeps each control's name, default and place. A field whose type is itself a
form is a nested group; its controls are named ``<field>_<name>``.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import gradio as gr

T = TypeVar("T")


@dataclass
class SplitForm:
    """The controls of a job over a split (Review's Score, the base of Evaluate's form)."""

    #: the model box's cache key
    model: str | None = None
    #: a split folder offered by the split box
    split: str | None = None
    #: ticked prompts
    selected: Sequence[str] | None = ()
    #: typed prompts, comma-separated
    typed: str | None = None
    #: whether the model's tuned per-prompt thresholds are used instead of ``threshold``
    tuned: bool = True
    threshold: float = 0.5
    #: images scored: the first N of the split
    limit: float | None = None


def _groups(form: type) -> dict[str, type | None]:
    """Each field of ``form`` and, for a nested group, its form type."""
    hints = typing.get_type_hints(form)
    return {f.name: hints[f.name] if dataclasses.is_dataclass(hints[f.name]) else None
            for f in dataclasses.fields(form)}


def _parameters(form: type, prefix: str = "") -> list[inspect.Parameter]:
    """Keyword parameters, one per control of ``form`` (nested groups flattened), with the fields' defaults."""
    defaults = {p.name: p.default for p in inspect.signature(form).parameters.values()}
    parameters = []
    for name, group in _groups(form).items():
        if group is not None:
            parameters += _parameters(group, f"{prefix}{name}_")
        else:
            parameters.append(inspect.Parameter(prefix + name, inspect.Parameter.KEYWORD_ONLY, default=defaults[name]))
    return parameters


def read_form(form: type[T], values: Mapping[str, Any], prefix: str = "") -> T:
    """The ``form`` that the controls' ``values`` (named as by :func:`named_inputs`) describe."""
    return form(**{name: read_form(group, values, f"{prefix}{name}_") if group is not None else values[prefix + name]
                   for name, group in _groups(form).items()})


def named_inputs(**controls: gr.components.Component | Mapping[str, gr.components.Component]
                 ) -> dict[str, gr.components.Component]:
    """``inputs_kwargs`` for a :func:`handler`: controls named after the form's fields, a nested group as the
    mapping of its own controls."""
    named: dict[str, gr.components.Component] = {}
    for name, control in controls.items():
        if isinstance(control, Mapping):
            named |= {f"{name}_{inner}": component for inner, component in named_inputs(**control).items()}
        else:
            named[name] = control
    return named


def handler(callback: Callable[..., T], form: type) -> Callable[..., T]:
    """The function gradio calls for ``callback(form, ...)``: the callback's parameters after the form (which gradio
    fills in: ``gr.Request``, ``gr.Progress``), then the form's controls as keyword parameters."""
    extras = list(inspect.signature(callback).parameters.values())[1:]

    def call(*filled: Any, **values: Any) -> T:
        return callback(read_form(form, values), *filled)

    call.__signature__ = inspect.Signature([*extras, *_parameters(form)])  # type: ignore[attr-defined]
    hints = typing.get_type_hints(callback)
    call.__annotations__ = {p.name: hints[p.name] for p in extras if p.name in hints}
    call.__name__, call.__doc__ = getattr(callback, "__name__", "call"), callback.__doc__
    return call
