"""The parts a curriculum stage trains, found by parameter name, and freezing by part."""
from __future__ import annotations

from train.parts import part_of, set_trainable
from vlm.model import build_tiny


def test_every_parameter_has_a_part_and_freezing_follows_it():
    tiny = build_tiny("tiny", 0)
    names = [n for n, _ in tiny.model.named_parameters()]
    parts = {part_of(n) for n in names}
    assert parts == {"vision", "projector", "llm"}
    assert part_of("model.image_newline") == "projector" and part_of("lm_head.weight") == "llm"
    counts = set_trainable(tiny.model, ("projector",))
    trainable = {n for n, p in tiny.model.named_parameters() if p.requires_grad}
    assert trainable == {n for n in names if part_of(n) == "projector"} and set(counts) == {"projector"}
