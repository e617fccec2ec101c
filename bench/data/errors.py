"""Errors of the data layer."""
from __future__ import annotations


class DatasetError(ValueError):
    """A dataset cannot be built (missing folder or listed file, or a split left empty); the message says where."""
