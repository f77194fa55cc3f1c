"""The papers' presets: every value carries its source, the values the papers state are the
ones used, the data we cannot convert yet is listed as missing, and OpenDriveVLA's interaction
stage draws the nuScenes agent-motion samples, its planning stage the planning samples."""
from __future__ import annotations

import re

import pytest
import yaml

from curricula.plan import plan_curriculum
from curricula.sources import resolve
from curricula.spec import load_curriculum, presets
from dataengine.reader import DatasetReader

PAPER_PRESETS = ("robotron_drive", "opendrivevla")
# what a stage must state itself (a default would be a value without a source)
RECIPE_KEYS = ("budget", "train", "lr", "prompt_style", "frames_per_video", "max_images", "max_seq_len",
               "batch_size", "grad_accum", "warmup_ratio", "weight_decay")
VALUE_LINE = re.compile(r"^\s*(?:- )?(seed|temperature|" + "|".join(RECIPE_KEYS) + r"):\s*\S")
SOURCE_ITEM = re.compile(r"^\s*- (?!name:)\S")  # a list item inside a stage that is not a stage
LEGEND = re.compile(r"^# source ([a-z]+): \S")


def _lines(preset: str) -> list[str]:
    return presets()[preset].read_text().splitlines()


def _comment_problem(line: str, legend: set[str]) -> str | None:
    if " # " not in line:
        return "no source comment"
    comment = line.split(" # ", 1)[1].strip()
    if re.match(r"our choice: \S", comment):
        return None
    key = re.match(r"([a-z]+)[: ]", comment)
    if key is None or key.group(1) not in legend:
        return f"comment cites no declared source ({', '.join(sorted(legend))}) and is not `our choice: <why>`"
    return None


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_every_value_line_cites_a_declared_source_or_says_our_choice(preset):
    lines = _lines(preset)
    legend = {m.group(1) for m in map(LEGEND.match, lines) if m}
    assert {"paper"} <= legend, "the header declares its sources as `# source KEY: what it is`"
    start = next(i for i, line in enumerate(lines) if line.startswith("stages:"))
    checked, problems = 0, []
    for n, line in enumerate(lines, 1):
        body = line.split(" # ", 1)[0]
        if VALUE_LINE.match(body) or (n > start + 1 and SOURCE_ITEM.match(body)):
            checked += 1
            problem = _comment_problem(line, legend)
            if problem:
                problems.append(f"{preset}.yaml:{n}: {problem}: {line.strip()}")
    assert not problems, "\n".join(problems)
    stages = load_curriculum(preset).stages
    # every recipe key of every stage, its mixing and each of its sources were checked
    assert checked == 1 + sum(len(RECIPE_KEYS) + (s.temperature is not None) + len(s.sources) for s in stages)


def test_the_checker_rejects_a_bare_value_and_an_undeclared_source():
    legend = {"paper", "fork"}
    assert _comment_problem("    lr: {llm: 1.0e-5}  # fork: stage2 script", legend) is None
    assert _comment_problem("    lr: {llm: 1.0e-5}  # our choice: a reason", legend) is None
    assert _comment_problem("    lr: {llm: 1.0e-5}", legend) == "no source comment"
    assert "cites no declared source" in _comment_problem("    lr: {llm: 1.0e-5}  # blog: somewhere", legend)
    assert "cites no declared source" in _comment_problem("    lr: {llm: 1.0e-5}  # our choice:", legend)


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_every_stage_states_every_value_itself(preset):
    raw = yaml.safe_load(presets()[preset].read_text())
    for stage in raw["stages"]:
        missing = [k for k in RECIPE_KEYS if k not in stage]
        assert not missing, f"{preset}/{stage['name']} leaves {missing} to the defaults"
        assert "temperature" in stage or all(isinstance(s, dict) and "weight" in s for s in stage["sources"])


def test_robotron_drive_uses_the_values_the_paper_states():
    """DriveMM arXiv 2412.07689v3, Supplementary "Implementation Details" (exponents of the
    learning rates as LLaVA-OneVision's, reference training.md 1.5)."""
    align, single, multi, driving = load_curriculum("robotron_drive").stages
    assert [s.pattern for s in align.sources] == ["lcs558k/train"]
    assert (align.train, align.lr, align.budget.kind, align.budget.value) == (("projector",), {"projector": 1e-3},
                                                                              "epochs", 1)
    assert [s.pattern for s in single.sources] == ["blip558k_recap/train", "coco118k_recap/train",
                                                   "cc3m_recap/train", "evol_instruct/train"]
    assert set(single.train) == {"projector", "vision", "llm"} and (single.budget.kind, single.budget.value) == (
        "epochs", 1)
    assert single.lr == {"projector": 1e-5, "vision": 2e-6, "llm": 1e-5}
    assert [s.batch_size * s.grad_accum * 8 for s in (align, single)] == [512, 256]
    assert {s.pattern for s in driving.sources} == {"codalm/train", "maplm/train", "drivelm/train", "lingoqa/train",
                                                    "omnidrive/train", "nuinstruct/train"}
    assert all(s.max_seq_len == 8192 for s in (align, single, multi, driving))


def test_opendrivevla_uses_the_values_its_sources_state():
    """The parts each stage trains (the paper) and the fork's script flags (hennyg888/OpenDriveVLA
    drivevla/finetune/*/finetune_*_0.5b.sh: 1e-4 then 1e-5, vision 2e-6, one epoch, batch 1)."""
    alignment, instruction, interaction, planning = load_curriculum("opendrivevla").stages
    assert [s.train for s in (alignment, instruction, interaction, planning)] == [
        ("projector",), ("projector", "llm"), ("projector", "llm"), ("projector", "vision", "llm")]
    assert alignment.lr == {"projector": 1e-4} and planning.lr == {"projector": 1e-5, "vision": 2e-6, "llm": 1e-5}
    assert instruction.lr == interaction.lr == {"projector": 1e-5, "llm": 1e-5}
    for s in (alignment, instruction, interaction, planning):
        assert (s.budget.kind, s.budget.value, s.batch_size, s.grad_accum) == ("epochs", 1, 1, 1)
        assert (s.warmup_ratio, s.weight_decay, s.max_seq_len) == (0.03, 0.0, 32768)
    assert {"tod3cap/train", "nucaption/train", "nux/train", "gpt_driver/train"} <= {
        s.pattern for s in instruction.sources}  # the paper's stage-2 data
    assert [(s.pattern, s.tasks) for s in interaction.sources] == [("nuscenes/train", ("motion.agents",))]
    assert [(s.pattern, s.tasks) for s in planning.sources] == [("nuscenes/train", ("planning.trajectory",))]


def test_opendrivevla_plan_lists_the_missing_sources_and_draws_agent_motion(nuscenes_shards):
    """On the converter's fixture shards (agent-motion samples on by default): the sets this
    project cannot convert are warned about by name, the interaction stage draws every
    `motion.agents` sample once and nothing else, and the planning stage only planning samples."""
    curriculum = load_curriculum("opendrivevla")
    stages = plan_curriculum(curriculum, nuscenes_shards)
    warnings = {ps.spec.name: " ".join(ps.warnings) for ps in stages}
    for name, missing in (("alignment", ("nucaption", "tod3cap")),
                          ("instruction", ("tod3cap", "nucaption", "nux", "gpt_driver"))):
        for dataset in missing:
            assert f"source '{dataset}/train': missing" in warnings[name]
    manifest = DatasetReader(nuscenes_shards, "nuscenes", "train").manifest
    task_of = dict(zip(manifest.column("key").to_pylist(), manifest.column("task").to_pylist()))
    for ps, task in ((stages[2], "motion.agents"), (stages[3], "planning.trajectory")):
        rows = resolve(ps.spec, nuscenes_shards)
        drawn = [rows[s].keys[r] for s, r in zip(ps.plan.source, ps.plan.row)]
        expected = sorted(k for k, t in task_of.items() if t == task)
        assert expected and sorted(drawn) == expected  # one epoch: each sample of the task once
        assert not ps.warnings
