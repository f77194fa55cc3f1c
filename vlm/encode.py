"""A rendered sample becomes token ids, labels and pixels, and a list of those becomes a batch.

Labels cover the assistant's tokens only (the chat format's trained segments); image and
video tokens are never labels. Every placeholder (`<image>` or `<video>` in the text) takes
exactly one group of the sample's images, in order: a count mismatch, an image used twice
or never, or a video on a model without video input raises `PlaceholderError` naming the
sample; nothing is silently reused or dropped.

Videos are brought to the stage's `frames_per_video` (see `resample`). Nothing is
truncated: a sample whose exact length exceeds the stage's `max_seq_len` raises `TooLong`
(the trainer skips it, counted and logged with its key), so no batch is ever longer.

For ZeRO-3 every rank must run the same modules in the same order, or parameter gathers
deadlock (haotian-liu/LLaVA#1746). `collate(..., need_image=True)` therefore gives a batch
without images a dummy image, appended after the last token of its first sequence with
labels ignored: causal attention keeps every real token's output (and the loss) exactly as
without it, while the vision tower and projector still run. The trainer decides
`need_image`/`need_video` with one all-reduce per step, so dummies appear only on ranks
whose batch lacks what another rank's batch has.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

from dataengine.frames import spaced
from vlm.chat import ChatFormat
from vlm.vision import VisionSpec, Visuals, image_pixels, sample_visuals

IGNORE = -100
PLACEHOLDER = re.compile(r"<image>|<video>")


class PlaceholderError(ValueError):
    """A sample whose placeholders and images do not pair up one to one."""


class TooLong(PlaceholderError):
    """A sample whose exact token count exceeds max_seq_len (it is skipped, never truncated)."""


@dataclass
class Encoded:
    key: str
    source: str
    input_ids: torch.Tensor   # (L,) int64
    labels: torch.Tensor      # (L,) int64, IGNORE outside assistant text
    visuals: Visuals
    visual_tokens: int


@dataclass
class Batch:
    inputs: dict              # keyword arguments of the model's forward
    labels: torch.Tensor      # (B, L)
    keys: list[str]
    sources: list[str]        # per sequence
    tokens: int               # non-padding tokens, dummies excluded
    crops: int                # vision-tower inputs (image crops + video frames), dummies included


def check_groups(key: str, n_placeholders: int, groups: list[list[int]], kinds: list[str], n_images: int,
                 has_video: bool) -> None:
    """Raise PlaceholderError unless placeholders, groups and images pair up one to one."""
    if not (n_placeholders == len(groups) == len(kinds)):
        raise PlaceholderError(f"sample {key}: {n_placeholders} placeholders in the conversation but "
                               f"{len(groups)} image/video groups ({len(kinds)} kinds)")
    used = sorted(i for g in groups for i in g)
    if used != list(range(n_images)):
        raise PlaceholderError(f"sample {key}: groups {groups} must use each of its {n_images} images exactly once")
    for g, kind in zip(groups, kinds):
        if kind not in ("image", "video") or (kind == "image" and len(g) != 1) or not g:
            raise PlaceholderError(f"sample {key}: group {g} of kind {kind!r} (an image group holds one image)")
    if "video" in kinds and not has_video:
        raise PlaceholderError(f"sample {key}: has a video but this model family takes no video input "
                               "(use a LLaVA-OneVision model)")


def resample(frames: list[int], count: int | None) -> list[int]:
    """`count` of a video's frames, evenly spaced (`dataengine.frames.spaced`, as the loader
    picks them), repeating some when it has fewer; so every video of a stage has the same
    frame count and they stack into one tensor."""
    if count is None or len(frames) == count:
        return frames
    return [frames[i] for i in spaced(len(frames), count)]


def video_as_frames(sample, frames_per_video: int | None) -> SimpleNamespace:
    """The sample for a model family without video input (LLaVA-NeXT): each video placeholder
    becomes one image placeholder per kept frame, in time order, as a multi-image sample."""
    groups, kinds, expand = [], [], []
    for g, kind in zip(sample.groups, sample.kinds):
        frames = resample(g, frames_per_video) if kind == "video" else g
        groups += [[i] for i in frames]
        kinds += ["image"] * len(frames)
        expand.append(len(frames) if kind == "video" else 0)
    used = sorted({i for g in groups for i in g})
    remap = {old: new for new, old in enumerate(used)}
    k = iter(expand)

    def replace(match: re.Match) -> str:
        n = next(k, 0)
        return "<image>" * n if n else match.group(0)

    conversation = [dict(turn, content=PLACEHOLDER.sub(replace, turn["content"]))
                    if isinstance(turn.get("content"), str) else turn for turn in sample.conversation]
    return SimpleNamespace(key=sample.key, source=getattr(sample, "source", ""), conversation=conversation,
                           groups=[[remap[i] for i in g] for g in groups], kinds=kinds,
                           images=[sample.images[i] for i in used])


class Encoder:
    """Turns LoadedSample-shaped objects (key, source, conversation, groups, kinds, images)
    into `Encoded`, with one tokenizer, image processor, vision spec and chat format."""

    def __init__(self, tokenizer, image_processor, spec: VisionSpec, chat: ChatFormat, max_seq_len: int = 8192,
                 frames_per_video: int | None = None, video_as_frames: bool = True):
        self.tokenizer, self.image_processor, self.spec, self.chat = tokenizer, image_processor, spec, chat
        self.max_seq_len, self.frames_per_video = max_seq_len, frames_per_video
        self.video_as_frames = video_as_frames   # a family without video input gets frames as images
        self.token_id = {"image": tokenizer.convert_tokens_to_ids("<image>"),
                         "video": tokenizer.convert_tokens_to_ids("<video>")}

    def encode(self, sample) -> Encoded:
        """A training sample: the whole conversation, labels on the assistant's text."""
        ids, labels, visuals, n_visual = self._tokens(sample, add_generation_prompt=False)
        if not any(label != IGNORE for label in labels):
            raise PlaceholderError(f"sample {sample.key}: no assistant tokens to train on")
        if len(ids) > self.max_seq_len:
            raise TooLong(f"sample {sample.key}: {len(ids)} tokens ({n_visual} visual) exceed max_seq_len "
                          f"{self.max_seq_len}")
        return Encoded(sample.key, getattr(sample, "source", ""), torch.tensor(ids), torch.tensor(labels),
                       visuals, n_visual)

    def encode_prompt(self, sample) -> Encoded:
        """A generation prompt: the conversation (ending with a user turn) plus the assistant header."""
        ids, labels, visuals, n_visual = self._tokens(sample, add_generation_prompt=True)
        return Encoded(sample.key, getattr(sample, "source", ""), torch.tensor(ids), torch.tensor(labels),
                       visuals, n_visual)

    def _tokens(self, sample, add_generation_prompt: bool):
        if self.video_as_frames and not self.spec.has_video and "video" in sample.kinds:
            sample = video_as_frames(sample, self.frames_per_video)
        segments = self.chat.segments(sample.conversation, add_generation_prompt)
        n_placeholders = sum(len(PLACEHOLDER.findall(text)) for text, _ in segments)
        check_groups(sample.key, n_placeholders, sample.groups, sample.kinds, len(sample.images),
                     self.spec.has_video)
        groups = [resample(g, self.frames_per_video) if k == "video" else g
                  for g, k in zip(sample.groups, sample.kinds)]
        frames = {len(g) for g, k in zip(groups, sample.kinds) if k == "video"}
        if len(frames) > 1:
            raise PlaceholderError(f"sample {sample.key}: its videos have different frame counts {sorted(frames)} "
                                   "(set the stage's frames_per_video)")
        visuals, counts = sample_visuals(self.spec, self.image_processor, sample.images, sample.kinds, groups)
        ids: list[int] = []
        labels: list[int] = []
        k = 0
        for text, trained in segments:
            pieces, literals = PLACEHOLDER.split(text), PLACEHOLDER.findall(text)
            for i, piece in enumerate(pieces):
                piece_ids = self.tokenizer(piece, add_special_tokens=False)["input_ids"] if piece else []
                ids += piece_ids
                labels += piece_ids if trained else [IGNORE] * len(piece_ids)
                if i < len(pieces) - 1:
                    ids += self._placeholder(sample, k, literals[i], counts[k])
                    labels += [IGNORE] * counts[k]
                    k += 1
        return ids, labels, visuals, sum(counts)

    def _placeholder(self, sample, k: int, literal: str, count: int) -> list[int]:
        kind = sample.kinds[k]
        if literal == "<video>" and kind != "video":
            raise PlaceholderError(f"sample {sample.key}: placeholder {k + 1} is <video> but its group is an image")
        return [self.token_id[kind]] * count

    def filler(self) -> Encoded:
        """A one-token sample without labels, for a micro-batch whose samples were all skipped:
        the rank still runs the step every other rank runs, and adds nothing to the loss."""
        ids = torch.tensor([self.tokenizer.eos_token_id])
        return Encoded("<skipped>", "", ids, torch.full_like(ids, IGNORE), Visuals(), 0)

    def dummy(self, kind: str) -> tuple[Visuals, int]:
        """A black crop-sized image, or a one-frame black video, and its token count."""
        from PIL import Image

        black = Image.new("RGB", (self.spec.crop, self.spec.crop))
        if kind == "image":
            pixels, sizes = image_pixels(self.image_processor, [black])
            return Visuals(pixel_values=pixels, image_sizes=sizes), self.spec.image_tokens(self.spec.crop,
                                                                                         self.spec.crop, False)
        return Visuals(pixel_values_videos=image_pixels(self.image_processor, [black])[0][:1, :1]), \
            self.spec.video_tokens(1)


@dataclass
class _Parts:
    ids: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    pixels: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    videos: list = field(default_factory=list)
    num_images: list = field(default_factory=list)


def collate(encoded: list[Encoded], encoder: Encoder, need_image: bool = False, need_video: bool = False) -> Batch:
    """Right-padded batch; pixels of every sample concatenated in sequence order."""
    parts = _Parts()
    tokens = sum(len(e.input_ids) for e in encoded)
    for e in encoded:
        parts.ids.append(e.input_ids)
        parts.labels.append(e.labels)
        _add_visuals(parts, e.visuals)
    for kind, needed in (("image", need_image), ("video", need_video)):
        if needed and not (parts.pixels if kind == "image" else parts.videos):
            _add_dummy(parts, encoder, kind)
    return Batch(_inputs(parts, encoder), _pad(parts.labels, IGNORE), [e.key for e in encoded],
                 [e.source for e in encoded], tokens, _crops(parts))


def _add_visuals(parts: _Parts, visuals: Visuals) -> None:
    parts.num_images.append(visuals.n_images)
    if visuals.n_images:
        parts.pixels.append(visuals.pixel_values)
        parts.sizes.append(visuals.image_sizes)
    if visuals.n_videos:
        parts.videos.append(visuals.pixel_values_videos)


def _add_dummy(parts: _Parts, encoder: Encoder, kind: str) -> None:
    """Append the dummy's tokens (labels ignored) to the end of the first sequence."""
    visuals, count = encoder.dummy(kind)
    token = encoder.token_id[kind]
    parts.ids[0] = torch.cat([parts.ids[0], torch.full((count,), token)])
    parts.labels[0] = torch.cat([parts.labels[0], torch.full((count,), IGNORE)])
    if kind == "image":
        parts.num_images[0] += 1
        parts.pixels.append(visuals.pixel_values)
        parts.sizes.append(visuals.image_sizes)
    else:
        parts.videos.append(visuals.pixel_values_videos)


def _pad(seqs: list[torch.Tensor], value: int) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=value)


def _inputs(parts: _Parts, encoder: Encoder) -> dict:
    pad = encoder.tokenizer.pad_token_id
    ids = _pad(parts.ids, encoder.tokenizer.eos_token_id if pad is None else pad)
    mask = _pad([torch.ones(len(s), dtype=torch.long) for s in parts.ids], 0)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if parts.pixels:
        crops = max(p.shape[1] for p in parts.pixels)
        inputs["pixel_values"] = torch.cat([torch.nn.functional.pad(p, (0, 0, 0, 0, 0, 0, 0, crops - p.shape[1]))
                                            for p in parts.pixels])
        inputs["image_sizes"] = torch.cat(parts.sizes)
        if encoder.spec.family == "llava_onevision":
            inputs["batch_num_images"] = torch.tensor(parts.num_images)
    if parts.videos:
        frames = {v.shape[1] for v in parts.videos}
        if len(frames) > 1:
            raise PlaceholderError(f"one batch holds videos of {sorted(frames)} frames; the model stacks videos, "
                                   "so a batch needs one frame count (the stage's frames_per_video)")
        inputs["pixel_values_videos"] = torch.cat(parts.videos)
    return inputs


def _crops(parts: _Parts) -> int:
    return sum(p.shape[0] * p.shape[1] for p in parts.pixels) + sum(v.shape[0] * v.shape[1] for v in parts.videos)
