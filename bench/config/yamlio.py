"""The one YAML reader and writer of colorbench: every file it reads (configs, ablation and study
files, profile presets, run directories' config.yaml, ablation snapshots, published numbers) and
every ``--set`` value go through :func:`loads` / :func:`read`.

It is PyYAML's safe loader with what a hand-written config never needs refused, so that bad
input is one clean line rather than a hang, a traceback or a silent surprise:

* anchors and aliases (``&name`` / ``*name``): a 1 KB "billion laughs" file expands into
  gigabytes; refusing them at the first anchor costs nothing;
* duplicate keys in a mapping (PyYAML keeps the last one silently);
* nesting deeper than :data:`MAX_DEPTH` (20,000 ``[`` would exhaust Python's stack);
* files that are not UTF-8 text.

Every problem is a :class:`YamlError` whose message is one line, ``source:line:column: problem``
(1-based, as editors count).  :func:`dumps` never writes anchors, so what colorbench writes it
can read back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

MAX_DEPTH = 100  # nested sequences/mappings; a config needs 3


class YamlError(ValueError):
    """A YAML text or file that cannot be read; the message is one line naming its source, line and column."""


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without anchors, aliases or duplicate keys, and with a nesting limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise ComposerError(None, None, f"alias *{event.anchor}: anchors and aliases are not allowed "
                                "(write the value out)", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, f"anchor &{event.anchor}: anchors and aliases are not allowed "
                                "(write the value out)", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.get(key)
                except TypeError:  # unhashable: the safe constructor says so below
                    continue
                if seen is not None:
                    raise ConstructorError(None, None, f"duplicate key {key!r} (first at line {seen.line + 1}); "
                                           "each key may appear once", key_node.start_mark)
                first[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def loads(text: str, source: str = "<string>") -> Any:
    """The value of the YAML ``text``; :class:`YamlError` naming ``source`` when it cannot be read."""
    loader = None
    try:
        loader = _Loader(text)  # checks every character already
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise YamlError(_one_line(err, source)) from None
    except RecursionError:
        raise YamlError(f"{source}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def read(path: str | Path) -> Any:
    """The value of the YAML file ``path``.

    :class:`YamlError` when it is not UTF-8 text or not valid YAML; ``OSError`` (with the path)
    when it cannot be read at all, e.g. missing or a directory.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise YamlError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None
    return loads(text, str(path))


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # a value used twice is written twice, never as &id001/*id001
        return True


def dumps(data: Any, **options: Any) -> str:
    """``yaml.safe_dump`` (keys in their order) without anchors and aliases, so :func:`loads` reads it back."""
    return yaml.dump(data, Dumper=_Dumper, **{"sort_keys": False, **options})


def _one_line(err: yaml.YAMLError, source: str) -> str:
    """``source:line:column: problem`` (1-based), with the context on the same line."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "not valid YAML"
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        message = f"{where}: {problem}"
        if err.problem and err.context:
            context_mark = err.context_mark
            at = f" at line {context_mark.line + 1}, column {context_mark.column + 1}" if context_mark else ""
            message += f" ({err.context}{at})"
        return " ".join(message.split())
    if isinstance(err, yaml.reader.ReaderError):
        character = err.character if isinstance(err.character, int) else ord(err.character)
        return f"{source}: character #x{character:04x} at position {err.position}: {err.reason}"
    return f"{source}: " + " ".join(str(err).split())
