"""From a stored sample to what the model is asked, and from the model's text to the answer scored.

A sample's user turns are its questions, each followed by its reference answer. A
benchmark's `PromptSpec` (its YAML `prompt:` block, checked by eval/registry.py) adds text
around the questions (`pre_prompt` before the first, `post_prompt` and a named reasoning
instruction after each), then the `dataengine.prompts` style places the image placeholders
and names the views, as in training. Videos keep the frames training keeps (`reduce_media`).

`openemma_cot` is a chain-of-thought planning instruction in the manner of OpenEMMA
(taco-group/OpenEMMA, arXiv 2412.15208): describe the scene, then the critical objects,
then the ego vehicle's intent, and only then the waypoints, after a fixed marker, so the
scorer reads the trajectory from the text after the last `Trajectory:` (the benchmark's
`answer_marker`). OpenEMMA asks these as separate calls; here they are one prompt.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from dataengine.frames import kept_media
from dataengine.prompts import render

REASONING = {
    "openemma_cot": (
        "Think step by step before answering, in this order.\n"
        "1. Scene: describe the driving scene (road layout, lanes, traffic lights and signs, weather).\n"
        "2. Critical objects: list the road users and obstacles that matter for the ego vehicle and where they are.\n"
        "3. Intent: say what the ego vehicle should do next and why (keep the lane, turn, slow down, stop).\n"
        "4. Trajectory: end with one line 'Trajectory: [(x1, y1), (x2, y2), (x3, y3), (x4, y4), (x5, y5), (x6, y6)]' "
        "giving the 6 waypoints in metres (x forward, y left), one every 0.5 s."),
}


@dataclass(frozen=True)
class PromptSpec:
    """How a sample's user turns become the model's prompt."""

    style: str = "robotron"      # a dataengine.prompts STYLES name: where the image placeholders go
    pre_prompt: str = ""         # text put before the first question
    post_prompt: str = ""        # text put after every question (e.g. "Answer with one word.")
    reasoning: str = ""          # a named reasoning instruction (REASONING), "" for none
    answer_marker: str = ""      # the scored answer is the text after the last occurrence ("" = all of it)


@dataclass(frozen=True)
class Turn:
    question: str
    reference: str               # "" when the source ships no answer (e.g. CODA-LM test)


def turns(sample: dict) -> list[Turn]:
    """The sample's (question, reference) pairs: each user turn and the assistant turn after it."""
    conv = sample["conversations"]
    out = []
    for i, turn in enumerate(conv):
        if turn["role"] == "user":
            nxt = conv[i + 1] if i + 1 < len(conv) and conv[i + 1]["role"] == "assistant" else None
            out.append(Turn(turn["content"], nxt["content"] if nxt else ""))
    return out


def references(sample: dict) -> list[list[str]]:
    """Reference answers per turn; a single-turn sample with `meta.references` (LingoQA's two
    answers) uses all of them."""
    refs = [[t.reference] for t in turns(sample)]
    extra = sample.get("meta", {}).get("references")
    if len(refs) == 1 and isinstance(extra, list) and extra and all(isinstance(r, str) for r in extra):
        refs = [list(extra)]
    return refs


def question_text(question: str, spec: PromptSpec, first: bool) -> str:
    parts = [spec.pre_prompt if first else "", question, spec.post_prompt, REASONING.get(spec.reasoning, "")]
    return "\n".join(p for p in parts if p)


def reduce_media(sample: dict, frames_per_video: int) -> tuple[dict, list[int]]:
    """The sample with at most `frames_per_video` frames per video (the frames training keeps),
    and the media indices kept."""
    kept = kept_media(sample, frames_per_video)
    return dict(sample, media=[sample["media"][i] for i in kept]), kept


def user_turns(sample: dict, spec: PromptSpec, placeholder: str = "<image>") -> tuple[list[str], object]:
    """Every user turn as the model sees it (placeholders in the first), and the render result."""
    qs = turns(sample)
    conv = []
    for k, t in enumerate(qs):
        conv += [{"role": "user", "content": question_text(t.question, spec, k == 0)},
                 {"role": "assistant", "content": t.reference}]
    rendered = render(dict(sample, conversations=conv), spec.style, placeholder)
    return [turn["content"] for turn in rendered.conversation if turn["role"] == "user"], rendered


def conversation_upto(user: list[str], answers: list[str], k: int) -> list[dict]:
    """The chat for generating answer k: user turns 0..k, with the model's own answers between."""
    conv = []
    for i in range(k + 1):
        conv.append({"role": "user", "content": user[i]})
        if i < k:
            conv.append({"role": "assistant", "content": answers[i]})
    return conv


def prompt_sha1(user: list[str], spec: PromptSpec, kinds: list[str]) -> str:
    data = {"user": user, "kinds": kinds, "answer_marker": spec.answer_marker}
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()


def extract_answer(text: str, marker: str) -> str:
    """The text after the last `marker` (all of it when there is no marker or it is absent)."""
    if marker and marker in text:
        return text.rsplit(marker, 1)[1].strip()
    return text.strip()
