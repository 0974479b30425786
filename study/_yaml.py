"""Reading study configs: YAML (1e-8 read as a number, no key given twice), merging, and `--set KEY=VALUE`."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from trainers.errors import ConfigError

RATE_TOLERANCE = 1e-9  # two noise rates closer than this are the same rate
_SET_FORMAT = "KEY=VALUE, e.g. search.num_samples=4"


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads 1e-8 as a number (as YAML 1.2 does) and refuses a key given twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")  # 1e-8, 2.5E3
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


def read_yaml(path: str | Path) -> Mapping[Any, Any]:
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config", where, "no such file") from None
    except IsADirectoryError:
        raise ConfigError("config", where, "a folder, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError("config", where, "not UTF-8 text") from None
    except OSError as error:
        raise ConfigError("config", where, one_line(f"cannot be read: {error.strerror or error}")) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError("config", where, "not valid YAML: " + yaml_reason(error)) from None
    if data is None:  # empty, or only comments: all defaults
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError("config", where, f"the top level must be a mapping of settings, not a {type(data).__name__}")
    return data


def yaml_reason(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return one_line(f"{getattr(error, 'problem', None) or error}{where}")


def apply_override(data: dict[Any, Any], text: str) -> None:
    """Set one dotted key of `data` to a YAML value, e.g. "search.asha={}" or "search.ranges.0.4.lam=[0, 1]"."""
    key, equals, raw = text.partition("=") if isinstance(text, str) else ("", "", "")
    parts = split_key(key.strip())
    if not equals or not all(parts):
        raise ConfigError("--set", text, _SET_FORMAT)
    try:
        value = yaml.load(raw, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError("--set", text, "the value is not valid YAML: " + yaml_reason(error)) from None
    node = data
    for depth, part in enumerate(parts[:-1]):
        name = find_key(node, part)
        if node.get(name) is None:
            node[name] = {}
        elif not isinstance(node[name], dict):
            raise ConfigError("--set", text, f"{'.'.join(parts[:depth + 1])} is not a mapping")
        node = node[name]
    node[find_key(node, parts[-1])] = value


def split_key(key: str) -> list[str]:
    """"search.ranges.0.4.lam" → ["search", "ranges", "0.4", "lam"]: digits on both sides of a dot make a rate."""
    parts: list[str] = []
    for part in key.split("."):
        if parts and part.isdigit() and parts[-1].isdigit():
            parts[-1] += "." + part
        else:
            parts.append(part)
    return parts


def find_key(mapping: Mapping[Any, Any], key: Any) -> Any:
    """The key of `mapping` that is `key`, or the same noise rate written otherwise (0.4 and "0.4"); else `key`."""
    if key in mapping:
        return key
    rate = as_rate(key)
    if rate is not None:
        for existing in mapping:
            other = as_rate(existing)
            if other is not None and abs(other - rate) <= RATE_TOLERANCE:
                return existing
    return key


def merge(base: Mapping[Any, Any], new: Mapping[Any, Any]) -> dict[Any, Any]:
    """A copy of `base` with `new`'s values: mappings merged key by key, anything else replaced."""
    out = copy_plain(base)
    for key, value in new.items():
        name = find_key(out, key)
        if isinstance(out.get(name), Mapping) and isinstance(value, Mapping):
            out[name] = merge(out[name], value)
        else:
            out[name] = copy_plain(value)
    return out


def copy_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: copy_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_plain(v) for v in value]
    return value


def as_rate(value: Any) -> float | None:
    """`value` as a finite number (a number, or a string such as "0.4"), else None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def one_line(text: str) -> str:
    return " ".join(text.split())
