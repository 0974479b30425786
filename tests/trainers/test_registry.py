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
