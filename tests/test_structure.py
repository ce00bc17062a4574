"""The layout rules of ``src/tools/structure.py`` (pure ``ast``, about a second): no import cycles, no import
running up the declared layers, no library importing a flow, function-local imports only with a ``# lazy:`` reason.
"""
import pytest

from src.tools.structure import FLOW_ROOMS, LAYERS, LIBRARY_ROOMS, measure



@pytest.fixture(scope="module")
def data():
    return measure()


def test_every_room_has_a_layer(data):
    assert data["undeclared_rooms"] == [], "declare the new package in src/tools/structure.py LAYERS"


def test_no_import_cycles(data):
    assert data["module_cycles"] == []
    assert data["room_cycles"] == []


def test_no_library_imports_upward(data):
    assert data["arrows_up"] == []


def test_no_library_imports_a_flow(data):
    assert data["library_imports_of_flows"] == []
    libraries = {(s, t) for s, t in data["room_edges"] if s in LIBRARY_ROOMS and t in FLOW_ROOMS}
    assert libraries == set()


def test_function_local_imports_give_their_reason(data):
    assert [f"{i['source']}:{i['line']} {i['target']}" for i in data["unexplained_local_imports"]] == []


def test_flows_are_entered_from_the_entry_scripts_only(data):
    """Every entry script runs a flow of src.flows (the MindSpore Hub entry runs src.hub)."""
    entries = dict((w["entry"], w["flow"]) for w in data["walks"])
    for script in ("train", "eval", "export", "infer"):
        assert entries[script].startswith("src.flows."), entries
    assert entries["src.quant.report"].startswith("src.flows."), entries
    calls = [c for w in data["walks"] + data["call_walks"] for c in w["upward_calls"] + w["callbacks"]]
    assert calls == []


def test_layers_name_each_room_once():
    rooms = [room for _, layer in LAYERS for room in layer]
    assert len(rooms) == len(set(rooms))
