"""The registry behind data sets, models and losses."""

import pytest

from trainers import ConfigError
from trainers.registry import Registry


def test_register_look_up_and_list() -> None:
    things: Registry[int] = Registry("thing")
    things.register("b")(2)
    things.register("a")(1)
    assert things.names() == ["a", "b"]
    assert things["b"] == 2 and "a" in things and "c" not in things


def test_unknown_name_lists_the_known_ones() -> None:
    things: Registry[int] = Registry("thing")
    things.register("alpha")(1)
    with pytest.raises(ConfigError) as err:
        things["alpah"]
    assert err.value.field == "thing" and "one of: alpha" in str(err.value)


def test_a_name_is_registered_once() -> None:
    things: Registry[int] = Registry("thing")
    things.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        things.register("a")(2)


def test_built_in_names_are_known_before_their_module_is_imported(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from trainers import registry

    things: Registry[int] = Registry("thing", ("a", "b"), "made_things")
    (tmp_path / "made_things.py").write_text("from trainers.registry import THINGS\nTHINGS.register('a')(1)\n"
                                             "THINGS.register('b')(2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "THINGS", things, raising=False)
    monkeypatch.delitem(sys.modules, "made_things", raising=False)
    assert things.names() == ["a", "b"] and "a" in things and "made_things" not in sys.modules
    assert things["b"] == 2 and "made_things" in sys.modules  # the first look-up imported the module
    with pytest.raises(ValueError, match="already registered"):
        things.register("a")(3)
    things.register("c")(3)
    assert things.names() == ["a", "b", "c"]
