"""Optimizer groups and the schedule on a tiny module (no model, no DeepSpeed): fast enough for
mutation testing (`make mutation MODULES=train/optim.py`). Expected values are worked by hand."""
from __future__ import annotations

import math
import sys
import types

import pytest
import torch

from train.config import OptimizerDefaults
from train.optim import build_optimizer, build_schedule, no_decay, param_groups, part_lrs, warmup_cosine


class Tiny(torch.nn.Module):
    """Parameter names as a LLaVA model has them: one per part, with biases, a norm and the newline."""

    def __init__(self):
        super().__init__()
        self.vision_tower = torch.nn.Linear(2, 3)            # weight 3x2 + bias 3
        self.multi_modal_projector = torch.nn.Linear(3, 4)   # weight 4x3 + bias 4
        self.image_newline = torch.nn.Parameter(torch.zeros(4))
        self.language_model = torch.nn.ModuleDict({"proj": torch.nn.Linear(4, 5), "norm": torch.nn.LayerNorm(5)})


LR = {"vision": 1e-5, "projector": 1e-3, "llm": 2e-5}


def _names(model, group):
    by_id = {id(p): n for n, p in model.named_parameters()}
    return sorted(by_id[id(p)] for p in group["params"])


def test_groups_split_by_part_and_decay_with_each_parts_lr():
    model = Tiny()
    groups = param_groups(model, LR, weight_decay=0.1)
    got = {(g["part"], g["weight_decay"]): (g["lr"], _names(model, g)) for g in groups}
    assert got == {
        ("llm", 0.1): (2e-5, ["language_model.proj.weight"]),
        ("llm", 0.0): (2e-5, ["language_model.norm.bias", "language_model.norm.weight", "language_model.proj.bias"]),
        ("projector", 0.1): (1e-3, ["multi_modal_projector.weight"]),
        ("projector", 0.0): (1e-3, ["image_newline", "multi_modal_projector.bias"]),
        ("vision", 0.1): (1e-5, ["vision_tower.weight"]),
        ("vision", 0.0): (1e-5, ["vision_tower.bias"]),
    }
    # sorted by (part, no_decay): deterministic order, decayed group first
    assert [(g["part"], g["weight_decay"]) for g in groups] == [
        ("llm", 0.1), ("llm", 0.0), ("projector", 0.1), ("projector", 0.0), ("vision", 0.1), ("vision", 0.0)]
    assert set(groups[0]) == {"params", "lr", "part", "weight_decay"}


def test_frozen_parameters_are_left_out_and_a_trainable_part_without_lr_is_an_error():
    model = Tiny()
    model.vision_tower.requires_grad_(False)
    groups = param_groups(model, {"projector": 1e-3, "llm": 2e-5}, weight_decay=0.0)
    assert {g["part"] for g in groups} == {"projector", "llm"}
    assert sum(len(g["params"]) for g in groups) == 7
    with pytest.raises(ValueError, match=r"parameter image_newline \(projector\).*'projector' no lr"):
        param_groups(model, {"llm": 2e-5}, weight_decay=0.0)


def test_no_decay_rule():
    assert no_decay("language_model.proj.bias", torch.zeros(3, 3))        # by name, whatever the shape
    assert no_decay("image_newline", torch.zeros(4))                       # 1-d
    assert not no_decay("language_model.proj.weight", torch.zeros(3, 3))
    assert not no_decay("x.biases", torch.zeros(3, 3))
    # ZeRO-3: the partitioned tensor is empty; its real shape is in ds_shape
    flat = torch.nn.Parameter(torch.zeros(0))
    flat.ds_shape = (3, 3)
    assert not no_decay("language_model.proj.weight", flat)
    flat.ds_shape = (3,)
    assert no_decay("language_model.proj.weight", flat)


def test_warmup_then_cosine_by_hand():
    f = warmup_cosine(10, 0.25)                                            # warmup = ceil(2.5) = 3
    assert [f(k) for k in range(3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    # after warmup: progress (k - 3) / 7, factor 0.5 (1 + cos(pi progress))
    assert f(3) == 1.0
    assert f(4) == pytest.approx(0.5 * (1 + math.cos(math.pi / 7)))
    assert f(8) == pytest.approx(0.5 * (1 + math.cos(5 * math.pi / 7)))
    assert f(10) == pytest.approx(0.0, abs=1e-12)
    assert f(25) == pytest.approx(0.0, abs=1e-12)                          # clamped past the end, not rising again
    g = warmup_cosine(4, 0.0)                                              # no warmup: starts at 1
    assert [g(k) for k in range(4)] == pytest.approx([1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))])
    h = warmup_cosine(3, 1.0)                                              # all warmup: max(1, 0) keeps it finite
    assert [h(k) for k in range(4)] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    last = warmup_cosine(4, 0.75)                                          # one step after warmup: ends at 0
    assert [last(k) for k in range(5)] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 0.0])


def test_optimizer_keeps_groups_and_schedule_scales_each_parts_lr():
    model = Tiny()
    defaults = OptimizerDefaults(betas=(0.8, 0.9), eps=1e-6)
    opt = build_optimizer(param_groups(model, LR, weight_decay=0.1), defaults, offload=False)
    assert isinstance(opt, torch.optim.AdamW)
    assert {(g["part"], g["weight_decay"]) for g in opt.param_groups} == {
        (p, d) for p in LR for d in (0.0, 0.1)}
    assert all(g["betas"] == (0.8, 0.9) and g["eps"] == 1e-6 for g in opt.param_groups)
    if not torch.cuda.is_available():
        assert not any(g.get("fused") for g in opt.param_groups)
    sched = build_schedule(opt, total_steps=4, warmup_ratio=0.5)           # warmup 2 steps
    assert part_lrs(opt) == pytest.approx({p: lr / 2 for p, lr in LR.items()})
    for _ in range(2):
        opt.step()
        sched.step()
    assert part_lrs(opt) == pytest.approx(LR)                              # factor(2) = 1
    opt.step()
    sched.step()
    assert part_lrs(opt) == pytest.approx({p: lr * 0.5 for p, lr in LR.items()})


def test_offload_without_a_gpu_is_torch_adamw():
    opt = build_optimizer(param_groups(Tiny(), LR, weight_decay=0.1), OptimizerDefaults(), offload=True)
    assert type(opt) is torch.optim.AdamW and not any(g.get("fused") for g in opt.param_groups)


class _CPUAdam:
    """Stands in for DeepSpeedCPUAdam (which compiles an op on first use): records its arguments."""

    def __init__(self, groups, **kwargs):
        self.groups, self.kwargs = groups, kwargs


def test_beside_a_gpu_offload_is_deepspeed_cpu_adam_in_adamw_mode_else_fused_adamw(monkeypatch):
    """AdamW mode is decoupled weight decay; plain Adam mode would fold it into the gradient."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "deepspeed.ops.adam", types.SimpleNamespace(DeepSpeedCPUAdam=_CPUAdam))
    groups = param_groups(Tiny(), LR, weight_decay=0.1)
    defaults = OptimizerDefaults(betas=(0.8, 0.9), eps=1e-6)
    opt = build_optimizer(groups, defaults, offload=True)
    assert isinstance(opt, _CPUAdam) and opt.groups is groups
    assert opt.kwargs == {"betas": (0.8, 0.9), "eps": 1e-6, "adamw_mode": True}
    fused = build_optimizer(groups, defaults, offload=False)
    assert type(fused) is torch.optim.AdamW and all(g["fused"] is True for g in fused.param_groups)
