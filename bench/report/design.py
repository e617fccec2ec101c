"""What a group of runs compares: its axes (scientific, nuisance, fixed), their settings in order, and its baseline.

An ablation's design is its grid (``bench.sweep``): each axis is read from the ``axis.<name>``
column that :mod:`bench.report.collect` writes.  A group without an ablation file (a demo run,
runs trained by hand) gets one scientific axis per config field whose value differs between
its configs, read from the ``config.<key>`` columns, and no baseline.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.report.collect import axis_label
from bench.sweep.ablation import Ablation, format_value


@dataclass(frozen=True)
class DesignAxis:
    """One axis of a design: the column holding each run's setting as text, and the settings in order."""

    name: str
    column: str
    role: str  # scientific | nuisance | fixed
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Design:
    """The axes of a group of runs and its baseline (axis name -> setting; None: no baseline)."""

    name: str
    description: str
    axes: tuple[DesignAxis, ...]
    baseline: dict[str, str] | None

    def role(self, role: str) -> tuple[DesignAxis, ...]:
        """The axes of ``role``, in grid order."""
        return tuple(axis for axis in self.axes if axis.role == role)


def cell_label(value: Any) -> str:
    """A setting as the report writes it (true/false, null, numbers as YAML writes them)."""
    if isinstance(value, np.generic):  # numpy scalars from a DataFrame, e.g. numpy.bool_
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    return format_value(value)


def design_of_ablation(ablation: Ablation) -> Design:
    """The design of an ablation file: its grid axes with their roles, and its baseline point."""
    axes = tuple(DesignAxis(axis.name, f"axis.{axis.name}", axis.role,
                            tuple(axis_label(list(values)) for values in axis.values)) for axis in ablation.axes)
    baseline = {axis.name: axis_label([ablation.baseline[key] for key in axis.keys]) for axis in ablation.axes}
    return Design(ablation.name, ablation.description, axes, baseline)


def design_from_configs(name: str, runs: pd.DataFrame) -> Design:
    """A design for runs without an ablation file: one scientific axis per config field that tells configs apart.

    A field is an axis when it is constant within each config id and differs between config ids
    (fields such as eval.every_epochs, which leave the config id unchanged, are not).
    """
    runs = runs.drop_duplicates("run_id")
    config_columns = sorted(c for c in runs.columns if c.startswith("config.") and c != "config.seed")
    axes = []
    if runs["config_id"].nunique() > 1:
        for column in config_columns:
            labels = runs[column].map(cell_label)
            if labels.nunique() > 1 and (labels.groupby(runs["config_id"]).nunique() == 1).all():
                values = sorted(runs[column].dropna().unique(), key=_order)
                ordered = tuple(dict.fromkeys(cell_label(v) for v in values))
                ordered += ("null",) if runs[column].isna().any() else ()
                axes.append(DesignAxis(column.removeprefix("config."), column, "scientific", ordered))
    return Design(name, "", tuple(axes), None)


def _order(value: Any) -> tuple:
    """Sort key of raw config values: numbers by value, everything else by its text."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    return (1, 0, str(value))
