"""Strict YAML reading: safe types only, and a repeated key is an error, never a silent overwrite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from palette_core.errors import DesignSchemaError, DuplicateIdError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    # the entry at fault is the mapping's own id, where it has one (an arm, a trait, a finding)
    ids = [
        v.value
        for k, v in node.value
        if k.tag.endswith(":str") and k.value == "id" and isinstance(v, yaml.ScalarNode)
    ]
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateIdError(
                loader.name,
                ids[0] if ids else None,
                str(key),
                f"key repeated on line {line} (first on line {seen[key]}); YAML would keep only one",
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


def _construct_timestamp(loader: _StrictLoader, node: yaml.ScalarNode) -> Any:
    """A YAML date or time stamp; an impossible one (2026-02-30) is a typed error with its line,
    not the ``ValueError`` of the date constructor."""
    try:
        return loader.construct_yaml_timestamp(node)
    except (ValueError, OverflowError) as exc:
        raise DesignSchemaError(
            loader.name,
            None,
            None,
            f"line {node.start_mark.line + 1}: {node.value!r} is not a calendar date ({exc})",
        ) from None


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def read_yaml(path: Path, label: str) -> Any:
    """Read one YAML file strictly; ``label`` is the name used in error messages."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DesignSchemaError(
            label, None, None, f"not UTF-8 text (byte {exc.start}): {exc.reason}"
        ) from exc
    try:
        loader = _StrictLoader(text)  # the reader rejects control characters here already
    except yaml.YAMLError as exc:
        pos = getattr(exc, "position", None)
        line = f"line {text.count(chr(10), 0, pos) + 1}" if isinstance(pos, int) else "unknown line"
        raise DesignSchemaError(
            label, None, None, f"not valid YAML ({line}): {str(exc).splitlines()[0]}"
        ) from exc
    loader.name = label
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}" if mark is not None else "unknown line"
        raise DesignSchemaError(
            label, None, None, f"not valid YAML ({line}): {exc.problem}"
        ) from exc
    finally:
        loader.dispose()
