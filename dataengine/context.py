"""Sample contexts: what the samples of one key frame share, stored once and referenced.

Per-QA datasets ask dozens of questions about one key frame (DriveLM ~90, nuScenes-QA ~13),
and every question's sample would repeat the frame's cameras (with calibrations), objects,
ids and frame-level meta: for the real DriveLM sample that was 80% of each sample's JSON. A
converter hands those fields over once as `Record.context`; the writer stores the context's
canonical JSON in the root's content-addressed store (`dataengine/mediastore.py`, member
`<sha1>.json`) and the sample carries `"context": "<sha1>"` with only its own fields. Readers
resolve it back, so users see the whole sample. Equal contexts are one entry, whichever
sample, unit, job or dataset wrote them.

The merge rule: a top-level field is either the context's or the sample's, never both, except
`meta`, whose keys are merged the same way (each key on one side only).
"""
from __future__ import annotations

import hashlib

FIELD = "context"
EXT = "json"
OWN = ("schema", "id", FIELD)  # always the sample's own: a context never holds them


def resolve(sample: dict, context: dict | None) -> dict:
    """The whole sample: `context`'s fields and the sample's own (without its `context`
    reference); without a context, `sample` itself. Raises ValueError when a field (or a
    meta key) is on both sides. The result shares the context's values (a sample's `media`
    items are the context's objects)."""
    if context is None:
        return sample
    sample_id = sample.get("id", "<no id>")
    if not isinstance(context, dict):
        raise ValueError(f"sample {sample_id}: its context is a {type(context).__name__}, not an object")
    inside = sorted(set(OWN) & set(context))
    if inside:
        raise ValueError(f"sample {sample_id}: its context holds {inside}, which only the sample may hold")
    both = sorted((set(context) & set(sample)) - {"meta"})
    if both:
        raise ValueError(f"sample {sample_id}: fields {both} are both in the sample and in its context")
    out = {**context, **{k: v for k, v in sample.items() if k != FIELD}}
    if "meta" in context and "meta" in sample:
        if not isinstance(context["meta"], dict) or not isinstance(sample["meta"], dict):
            raise ValueError(f"sample {sample_id}: meta must be an object in the sample and in its context")
        shared = sorted(set(context["meta"]) & set(sample["meta"]))
        if shared:
            raise ValueError(f"sample {sample_id}: meta keys {shared} are both in the sample and in its context")
        out["meta"] = {**context["meta"], **sample["meta"]}
    return out


def reference(sample: dict, context_bytes: bytes) -> dict:
    """What the shard holds: the sample's own fields and the sha1 of its context's canonical
    JSON (`shards.sample_json` of the context, the bytes the store keeps)."""
    return {**sample, FIELD: hashlib.sha1(context_bytes).hexdigest()}
