"""The version diff against hand-written expectations: nodes and edges added, removed
and changed, changed config paths with old and new values, layout kept apart."""

from __future__ import annotations

import copy
from typing import Any

from uzo_api.services.version_diff import FieldChange, ItemChange, diff_documents


def base() -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "src",
                "type": "uzoSource",
                "position": {"x": 0, "y": 0},
                "data": {
                    "nodeType": "values",
                    "label": "Orders",
                    "config": {"rows": [{"id": 1, "amount": 5}]},
                },
            },
            {
                "id": "keep",
                "position": {"x": 200, "y": 0},
                "data": {
                    "nodeType": "filter",
                    "config": {"condition": "amount > 1", "options": {"strict": True}},
                },
                "measured": {"width": 120, "height": 40},
            },
            {
                "id": "out",
                "position": {"x": 400, "y": 0},
                "data": {"nodeType": "sink", "config": {"path": "out.csv"}},
            },
        ],
        "edges": [
            {"id": "e1", "source": "src", "target": "keep"},
            {"id": "e2", "source": "keep", "target": "out", "animated": True},
        ],
        "viewport": {"x": 0, "y": 0, "zoom": 1},
    }


def test_identical_documents_have_no_changes() -> None:
    diff = diff_documents(base(), base())
    assert diff.identical
    assert not diff.layout_only
    assert not diff.logic_changed
    assert diff.nodes.added == diff.nodes.removed == diff.nodes.changed == []
    assert diff.layout.empty()


def test_added_removed_and_changed_nodes_edges_and_config_fields() -> None:
    old = base()
    new = copy.deepcopy(old)
    keep = new["nodes"][1]
    keep["data"]["config"]["condition"] = "amount > 10"  # changed
    keep["data"]["config"]["options"] = {"strict": False, "limit": 3}  # changed + added
    keep["data"]["settings"] = {"retries": 2}  # added section
    new["nodes"][0]["data"]["config"]["rows"][0]["amount"] = 7  # a list item's field
    new["nodes"][0]["data"]["nodeType"] = "csv_source"
    del new["nodes"][2]  # "out" removed
    sink = {
        "id": "db",
        "position": {"x": 400, "y": 100},
        "data": {"nodeType": "sink", "config": {"path": "out.parquet"}},
    }
    new["nodes"].append(sink)  # "db" added
    new["edges"] = [
        {"id": "e1", "source": "src", "target": "keep", "targetHandle": "in"},  # changed
        {"id": "e3", "source": "keep", "target": "db"},  # added; e2 removed
    ]

    diff = diff_documents(old, new)

    assert diff.logic_changed
    assert not diff.layout_only
    assert diff.nodes.added == [sink]
    assert diff.nodes.removed == [old["nodes"][2]]
    assert diff.nodes.changed == [
        ItemChange(
            "src",
            [
                FieldChange("data.nodeType", "changed", "values", "csv_source"),
                FieldChange("data.config.rows.0.amount", "changed", 5, 7),
            ],
        ),
        ItemChange(
            "keep",
            [
                FieldChange("data.config.condition", "changed", "amount > 1", "amount > 10"),
                FieldChange("data.config.options.strict", "changed", True, False),
                FieldChange("data.config.options.limit", "added", None, 3),
                FieldChange("data.settings", "added", None, {"retries": 2}),
            ],
        ),
    ]
    assert diff.edges.added == [{"id": "e3", "source": "keep", "target": "db"}]
    assert diff.edges.removed == [old["edges"][1]]
    assert diff.edges.changed == [
        ItemChange("e1", [FieldChange("targetHandle", "added", None, "in")])
    ]
    assert diff.layout.empty()


def test_a_layout_change_is_not_a_logic_change() -> None:
    old = base()
    new = copy.deepcopy(old)
    new["nodes"][0]["position"] = {"x": 10, "y": 0}
    new["nodes"][0]["selected"] = True
    new["nodes"][0]["data"]["label"] = "All orders"
    new["nodes"][1]["measured"] = {"width": 140, "height": 40}
    new["nodes"][1]["dragging"] = False
    new["edges"][1]["animated"] = False
    new["edges"][1]["style"] = {"stroke": "red"}
    new["viewport"] = {"x": -50, "y": 0, "zoom": 1.5}

    diff = diff_documents(old, new)

    assert diff.layout_only
    assert not diff.identical
    assert diff.nodes.changed == []
    assert diff.edges.changed == []
    assert diff.layout.nodes == [
        ItemChange(
            "src",
            [
                FieldChange("position.x", "changed", 0, 10),
                FieldChange("data.label", "changed", "Orders", "All orders"),
                FieldChange("selected", "added", None, True),
            ],
        ),
        ItemChange(
            "keep",
            [
                FieldChange("measured.width", "changed", 120, 140),
                FieldChange("dragging", "added", None, False),
            ],
        ),
    ]
    assert diff.layout.edges == [
        ItemChange(
            "e2",
            [
                FieldChange("animated", "changed", True, False),
                FieldChange("style", "added", None, {"stroke": "red"}),
            ],
        )
    ]
    assert diff.layout.viewport == [
        FieldChange("viewport.x", "changed", 0, -50),
        FieldChange("viewport.zoom", "changed", 1, 1.5),
    ]


def test_one_node_with_logic_and_layout_changes_is_reported_in_both_sections() -> None:
    old = base()
    new = copy.deepcopy(old)
    new["nodes"][2]["position"]["y"] = 50
    new["nodes"][2]["data"]["config"]["path"] = "final.csv"
    diff = diff_documents(old, new)
    assert not diff.layout_only
    assert diff.nodes.changed == [
        ItemChange("out", [FieldChange("data.config.path", "changed", "out.csv", "final.csv")])
    ]
    assert diff.layout.nodes == [ItemChange("out", [FieldChange("position.y", "changed", 0, 50)])]


def test_values_lists_and_types_compare_as_json_does() -> None:
    old = base()
    new = copy.deepcopy(old)
    rows = new["nodes"][0]["data"]["config"]["rows"]
    rows.append({"id": 2, "amount": 1})  # another length: the whole list
    new["nodes"][1]["data"]["config"]["options"]["strict"] = 1  # a bool became a number
    del new["nodes"][2]["data"]["config"]["path"]  # a field removed
    diff = diff_documents(old, new)
    assert diff.nodes.changed == [
        ItemChange(
            "src",
            [
                FieldChange(
                    "data.config.rows", "changed", old["nodes"][0]["data"]["config"]["rows"], rows
                )
            ],
        ),
        ItemChange("keep", [FieldChange("data.config.options.strict", "changed", True, 1)]),
        ItemChange("out", [FieldChange("data.config.path", "removed", "out.csv", None)]),
    ]


def test_an_unknown_field_counts_as_logic_and_drafts_without_ids_are_compared() -> None:
    old = {"nodes": [{"data": {"nodeType": "filter"}}], "edges": []}
    new = {"nodes": [{"data": {"nodeType": "filter"}, "parentId": "group1"}], "edges": []}
    diff = diff_documents(old, new)
    assert diff.nodes.changed == [
        ItemChange("#0", [FieldChange("parentId", "added", None, "group1")])
    ]
    assert not diff.layout_only
    assert diff_documents({}, {"nodes": [{"id": "a"}]}).nodes.added == [{"id": "a"}]
    assert diff_documents(None, None).identical
