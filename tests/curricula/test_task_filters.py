"""Curriculum sources with task filters (`tasks: [planning.*]`): a stage takes one task of a
dataset, the plan counts only the matching samples, and two filtered sources may share a
dataset/split only when no sample is in both."""
from __future__ import annotations

import pytest
from synthetic_shards import jpeg, record, write_split

from curricula.plan import format_text, plan_curriculum
from curricula.sources import resolve
from curricula.spec import SpecError, parse_curriculum
from dataengine.errors import UsageError

TASKS = ["planning.trajectory"] * 6 + ["motion.agents"] * 4 + ["vqa.perception"] * 2


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("task_filters")
    items = [record("drive", "train", f"s{i:02d}", f"drive:scene{i // 4}", f"drive:s{i:02d}", [jpeg(i)], task=t)
             for i, t in enumerate(TASKS)]
    write_split(root, "drive", "train", items)
    return root


def _curriculum(*sources):
    return parse_curriculum({"name": "t", "seed": 0, "stages": [{
        "name": "s", "sources": list(sources), "budget": {"samples": 20}, "train": ["llm"], "lr": {"llm": 1e-5}}]})


def test_a_filtered_source_keeps_only_its_tasks(root):
    cur = _curriculum({"pattern": "drive/train", "weight": 1, "tasks": ["planning.*"]},
                      {"pattern": "drive/train", "weight": 1, "tasks": ["motion.*", "vqa.perc*"]})
    planning, rest = resolve(cur.stages[0], root)
    assert len(planning) == 6 and len(rest) == 6
    assert planning.pattern == "drive/train [planning.*]" and rest.pattern == "drive/train [motion.*, vqa.perc*]"
    (stage,) = plan_curriculum(cur, root)
    assert [(sp.pattern, sp.size) for sp in stage.plan.sources] == [("drive/train [planning.*]", 6),
                                                                    ("drive/train [motion.*, vqa.perc*]", 6)]
    text = format_text(cur, root, [stage])
    assert "drive/train [planning.*]" in text and "drive/train [motion.*, vqa.perc*]" in text


def test_unfiltered_fingerprint_differs_from_filtered(root):
    full, = resolve(_curriculum({"pattern": "drive/train", "weight": 1}).stages[0], root)
    some, = resolve(_curriculum({"pattern": "drive/train", "weight": 1, "tasks": ["*"]}).stages[0], root)
    assert len(full) == len(some) == len(TASKS) and full.fingerprint != some.fingerprint


def test_overlapping_sources_are_refused(root):
    with pytest.raises(UsageError, match="make the patterns or task filters disjoint"):
        resolve(_curriculum({"pattern": "drive/train", "weight": 1, "tasks": ["planning.*"]},
                            {"pattern": "drive/train", "weight": 1, "tasks": ["planning.traj*"]}).stages[0], root)
    with pytest.raises(UsageError, match="both source"):
        resolve(_curriculum({"pattern": "drive/train", "weight": 1},
                            {"pattern": "drive/train", "weight": 1, "tasks": ["motion.*"]}).stages[0], root)


def test_bad_task_filters_name_the_key():
    with pytest.raises(SpecError, match=r"sources\[0\]\.tasks"):
        _curriculum({"pattern": "drive/train", "weight": 1, "tasks": "planning.*"})
    with pytest.raises(SpecError, match=r"sources\[0\]\.tasks\[0\]"):
        _curriculum({"pattern": "drive/train", "weight": 1, "tasks": ["Planning!"]})
    with pytest.raises(SpecError, match="listed twice"):
        _curriculum({"pattern": "drive/train", "weight": 1, "tasks": ["a.*"]},
                    {"pattern": "drive/train", "weight": 1, "tasks": ["a.*"]})
