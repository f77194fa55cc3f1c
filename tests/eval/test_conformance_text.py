"""COCO text metrics tokenize as the official evaluators call the PTB tokenizer: per corpus, all
references in one call and all hypotheses in another, in key order.

Oracle: salaniz/pycocoevalcap 1.2 (pycocoevalcap/eval.py `COCOEvalCap.evaluate`,
tokenizer/ptbtokenizer.py), as installed: its own PTBTokenizer on gts, then on res.
"""
from __future__ import annotations

import pytest

from eval.metrics.text import CocoText, ptb_tokenize

# "No." before a line starting with a digit stays the abbreviation "no."; before "Stop." it does not.
HYPS = ["No.", "Stop.", "", "Slow down etc.", "Two cars."]
REFS = [["1 car ahead."], ["Stop now.", "No."], ["Nothing."], ["Slow down."], ["2 cars.", "Two cars ahead."]]


def official(hyps, refs):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in rs] for i, rs in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {**{f"bleu_{n + 1}": b for n, b in enumerate(bleu)}, "rouge_l": Rouge().compute_score(gts, res)[0],
            "cider": Cider().compute_score(gts, res)[0]}


def test_per_side_tokenization_equals_official():
    ours = CocoText(meteor=False).score({"a": (HYPS, REFS), "b": (HYPS[::-1], REFS[::-1])})
    assert ours["a"] == pytest.approx(official(HYPS, REFS), abs=1e-12)
    assert ours["b"] == pytest.approx(official(HYPS[::-1], REFS[::-1]), abs=1e-12)


def test_interleaved_call_would_differ():
    """The old call (hypothesis, then its references, in one stream) tokenizes "No." differently."""
    interleaved = ptb_tokenize([t for h, rs in zip(HYPS, REFS) for t in (h, *rs)])
    assert interleaved[0] == "no." and ptb_tokenize(HYPS)[0] == "no"
