"""Camera tables and fixtures by convention: each converter brings its own table and fixture,
and a mistake in either is named, not guessed around."""
from __future__ import annotations

import pytest

import dataengine.converter as converter
from dataengine.cameras import canonical, check_table
from dataengine.errors import UsageError
from dataengine.fixtures import fixture_jobs


class _Plain(converter.Converter):
    name, version = "test_plain", "1"

    def check_source(self) -> None:
        pass

    def units(self) -> list:
        return []

    def convert_unit(self, unit):
        return iter(())


def test_canonical_maps_through_the_converters_table_and_names_unknown_cameras():
    table = {"CAM_FRONT": "front", "CAM_BACK": "back"}
    assert canonical(table, "CAM_BACK", "ds") == "back"
    with pytest.raises(KeyError, match=r"ds: unknown camera 'CAM_SIDE'; known: \['CAM_BACK', 'CAM_FRONT'\]"):
        canonical(table, "CAM_SIDE", "ds")
    with pytest.raises(KeyError, match="no camera table for dataset 'ds'"):
        canonical({}, "CAM_FRONT", "ds")


def test_register_refuses_a_table_outside_the_canonical_vocabulary(monkeypatch):
    monkeypatch.setattr(converter, "_REGISTRY", {})

    class Odd(_Plain):
        name, cameras = "test_odd", {"CAM_FRONT": "front", "CAM_UP": "up"}

    with pytest.raises(ValueError, match=r"test_odd: camera table maps to \['up'\]"):
        converter.register(Odd)


def test_a_converter_without_a_fixture_module_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setattr(converter, "_REGISTRY", {})
    converter.register(_Plain)  # defined in a test module: no converters/<name>/fixture.py beside it
    with pytest.raises(UsageError, match="test_plain has no fixture"):
        fixture_jobs("test_plain", tmp_path)


def test_every_registered_converter_declares_a_camera_table_and_has_a_fixture():
    import importlib

    for name, cls in converter.registry().items():
        assert cls.cameras, f"{name} declares no camera table"
        package = cls.__module__.rpartition(".")[0]
        assert hasattr(importlib.import_module(f"{package}.fixture"), "jobs"), f"{name}: no fixture jobs()"


def test_camera_messages_in_full():
    with pytest.raises(KeyError) as err:
        canonical({"CAM_FRONT": "front"}, "CAM_UP", "ds")
    assert err.value.args[0] == "ds: unknown camera 'CAM_UP'; known: ['CAM_FRONT']"
    with pytest.raises(KeyError) as err:
        canonical({}, "CAM_FRONT", "ds")
    assert err.value.args[0] == "no camera table for dataset 'ds': set `cameras` on its converter"
    with pytest.raises(ValueError) as err:
        check_table({"a": "up", "b": "front", "c": "down", "d": "up"}, "ds")
    assert err.value.args[0] == ("ds: camera table maps to ['down', 'up'], which are not canonical; use front, "
                                 "front_left, front_right, back, back_left, back_right, side_left, side_right, bev")
    check_table({"a": "front", "b": "bev"}, "ds")
