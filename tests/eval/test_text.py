"""The text metrics equal pycocoevalcap's own pipeline on fixed inputs, METEOR included."""
from __future__ import annotations

import pytest

from eval.metrics.text import CocoText, ptb_tokenize

HYPS = ["The car is stopped at a red light.", "A dog, running!", "", "Slow down; a cyclist ahead (left)."]
REFS = [["The car waits at the red light.", "A car is stopped."], ["a cat"], ["Nothing to report."],
        ["Slow down: there is a cyclist ahead on the left."]]


def library_scores(hyps, refs) -> dict:
    """pycocoevalcap's documented pipeline: its PTBTokenizer, then each scorer."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in rs] for i, rs in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {**{f"bleu_{n + 1}": b for n, b in enumerate(bleu)}, "rouge_l": Rouge().compute_score(gts, res)[0],
            "cider": Cider().compute_score(gts, res)[0]}, gts, res


def test_equal_to_pycocoevalcap_pipeline():
    expected, gts, res = library_scores(HYPS, REFS)
    ours = CocoText(meteor=False).score({"c": (HYPS, REFS)})["c"]
    assert ours == pytest.approx(expected, rel=1e-12)
    assert ptb_tokenize(HYPS) == [res[i][0] for i in range(len(HYPS))]
    assert ptb_tokenize(REFS[0]) == gts[0]


@pytest.mark.slow
def test_meteor():
    text = CocoText(meteor=True)
    try:
        same = text.score({"s": (["the car is stopped at a red light"], [["The car is stopped at a red light."]])})
        mixed = text.score({"m": (["the car is stopped at a red light", "a dog"],
                                  [["the car is stopped at a red light"], ["a cat"]])})
    finally:
        text.close()
    assert same["s"]["meteor"] == pytest.approx(1.0)
    assert 0.0 < mixed["m"]["meteor"] < 1.0
