"""COCO text metrics by hand: the PTB tokenizer's output, corpus BLEU-1..4 / ROUGE-L / CIDEr on
pre-tokenized words, references kept with their hypothesis, and the scorer entries.

Hand values follow pycocoevalcap 1.2's definitions (salaniz/pycocoevalcap): bleu/bleu_scorer.py
(corpus BLEU: clipped n-gram counts summed over the corpus, geometric mean, brevity penalty with
the closest reference length), rouge/rouge.py (LCS F-measure, beta 1.2, averaged over samples),
cider/cider_scorer.py (tf-idf n-gram vectors, idf = log(#images) - log(df), cosine per n, mean
over n = 1..4, times 10, averaged over images), tokenizer/ptbtokenizer.py (PUNCTUATIONS dropped).
"""
from __future__ import annotations

import math
import subprocess

import pytest

from eval.metrics import ScoreContext
from eval.metrics.text import METRICS, CocoText, clean, java_problem, ptb_tokenize, text_entries


def test_clean_turns_control_and_line_separators_into_spaces_only():
    assert clean("a\tb\nc\x00d\u2028e\u2029f") == "a b c d e f"
    assert clean("Café – ok, 3.5 m") == "Café – ok, 3.5 m"     # letters, dashes, punctuation, spaces kept


def test_ptb_tokens_lower_cased_and_punctuation_tokens_dropped():
    texts = ["The Car, (left) is STOPPED!", "", "Café au lait; etc.", "don't go -- now...", "a\tb\u2028c", "Yes."]
    # PTB: "don't" -> "do n't"; brackets -> -lrb- / -rrb- (lower-cased, so not in PUNCTUATIONS);
    # "etc." keeps its period (an abbreviation token); a line separator does not split the caption
    assert ptb_tokenize(texts) == ["the car -lrb- left -rrb- is stopped", "", "café au lait etc.", "do n't go now",
                                   "a b c", "yes"]
    assert ptb_tokenize(["one\ntwo", "three"]) == ["one two", "three"]


def test_a_tokenizer_that_adds_lines_is_an_error(monkeypatch):
    def run(cmd, input, capture_output, check):
        return subprocess.CompletedProcess(cmd, 0, stdout=b"a\nb\nc\n", stderr=b"")

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(RuntimeError, match="returned 4 lines for 2 captions"):   # split at each newline
        ptb_tokenize(["a", "b"])


def test_a_tokenizer_output_without_final_newline_is_padded(monkeypatch):
    def run(cmd, input, capture_output, check):
        assert input == b"A\nb"        # one caption a line, utf-8
        assert cmd[-2:] == ["-preserveLines", "-lowerCase"] and cmd[:2] == ["java", "-cp"]
        return subprocess.CompletedProcess(cmd, 0, stdout=b"a", stderr=b"")

    monkeypatch.setattr(subprocess, "run", run)
    assert ptb_tokenize(["A", "b"]) == ["a", ""]


def test_a_trailing_newline_is_not_a_caption_and_spaces_split_as_pycocoevalcap_does(monkeypatch):
    def run(cmd, input, capture_output, check):
        return subprocess.CompletedProcess(cmd, 0, stdout=b"x  , y \nz\n", stderr=b"")

    monkeypatch.setattr(subprocess, "run", run)
    # ptbtokenizer.py: ' '.join(w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS)
    assert ptb_tokenize(["X, y", "z"]) == ["x  y", "z"]


def test_blank_lines_past_the_captions_are_an_error(monkeypatch):
    def run(cmd, input, capture_output, check):
        return subprocess.CompletedProcess(cmd, 0, stdout=b"a\nb\n\n", stderr=b"")

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(RuntimeError, match="returned 4 lines for 2 captions"):
        ptb_tokenize(["a", "b"])


def test_a_failing_tokenizer_raises(monkeypatch):
    import pycocoevalcap.tokenizer.ptbtokenizer as ptb

    monkeypatch.setattr(ptb, "STANFORD_CORENLP_3_4_1_JAR", "no-such.jar")     # java exits 1, prints nothing
    with pytest.raises(subprocess.CalledProcessError):
        ptb_tokenize(["a", "b"])


def test_java_problem(monkeypatch):
    assert java_problem() is None
    monkeypatch.setenv("PATH", "")
    assert java_problem() == "java not found (pycocoevalcap's PTB tokenizer and METEOR need Java 17)"


def test_corpus_bleu_rouge_cider_by_hand(capsys):
    # sample 1: "a b c d x" vs "a b c d y"; sample 2 identical "e f g". Corpus n-gram matches:
    # 1-grams 7/8, 2-grams 5/6, 3-grams 3/4, 4-grams 1/2; lengths 8 and 8: no brevity penalty
    s = CocoText(meteor=False).score({"x": (["A b c d x.", "e, f g"], [["a b c d y"], ["e f g"]])})["x"]
    p = [7 / 8, 5 / 6, 3 / 4, 1 / 2]
    for n in range(1, 5):
        assert s[f"bleu_{n}"] == pytest.approx(math.prod(p[:n]) ** (1 / n), rel=1e-6)
    # ROUGE-L: LCS 4 of 5 both ways (F 0.8), then 1.0; mean 0.9
    assert s["rouge_l"] == pytest.approx(0.9)
    # CIDEr: no n-gram in two images, so every idf is log 2 and cancels in the cosine;
    # sample 1: (4/5 + 3/4 + 2/3 + 1/2) / 4 * 10; sample 2: 1, 1, 1 and no 4-gram (0): 7.5
    assert s["cider"] == pytest.approx(((0.8 + 0.75 + 2 / 3 + 0.5) / 4 * 10 + 7.5) / 2)
    assert set(s) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider"}
    assert all(type(v) is float for v in s.values())
    assert capsys.readouterr().out == ""       # BLEU's verbose report is not printed


def test_references_stay_with_their_hypothesis():
    # 2, 1 and 3 references: each hypothesis equals its own last reference, so ROUGE-L is 1 only
    # when the flat tokenized references are cut back at the right places
    hyps = ["one two", "three four", "five six"]
    refs = [["zzz", "one two"], ["three four"], ["yyy", "www", "five six"]]
    s = CocoText(meteor=False).score({"c": (hyps, refs)})["c"]
    assert s["rouge_l"] == pytest.approx(1.0)
    # CIDEr per image: the mean over its references; "one two" and "three four", "five six" are
    # each in one image (idf log 3) and the other references share nothing: n = 1, 2 give cosine 1
    # with the matching reference, 0 with the others; n = 3, 4 have no n-grams (0)
    assert s["cider"] == pytest.approx(((1 + 1) / 4 / 2 + (1 + 1) / 4 / 1 + (1 + 1) / 4 / 3) / 3 * 10)


def test_empty_corpora_left_out_and_missing_references_refused():
    text = CocoText(meteor=False)
    assert text.score({"e": ([], [])}) == {}
    with pytest.raises(ValueError, match="corpus m: every hypothesis needs at least one reference"):
        text.score({"m": (["a"], [])})
    with pytest.raises(ValueError, match="corpus z: every hypothesis needs at least one reference"):
        text.score({"z": (["a", "b"], [["a"], []])})


class FakeMeteor:
    """Stands in for pycocoevalcap's Meteor (a JVM): records construction, scoring and closing."""

    made: list = []

    def __init__(self):
        self.closed = 0
        FakeMeteor.made.append(self)

    def compute_score(self, gts, res):
        self.scored = (gts, res)
        return 0.25, [0.25] * len(res)

    def __del__(self):
        self.closed += 1


def test_meteor_is_one_process_reused_and_closed(monkeypatch):
    import pycocoevalcap.meteor.meteor as meteor_module

    monkeypatch.setattr(FakeMeteor, "made", [])
    monkeypatch.setattr(meteor_module, "Meteor", FakeMeteor)
    text = CocoText()
    a = text.score({"a": (["a b"], [["a b"]])})["a"]
    b = text.score({"b": (["c d"], [["c e"]])})["b"]
    assert a["meteor"] == 0.25 and b["meteor"] == 0.25 and type(a["meteor"]) is float
    assert len(FakeMeteor.made) == 1 and text.meteor() is FakeMeteor.made[0]
    assert FakeMeteor.made[0].scored == ({0: ["c e"]}, {0: ["c d"]})      # tokenized references, hypotheses
    text.close()
    assert FakeMeteor.made[0].closed == 1
    text.close()                                 # closing twice closes nothing more
    assert FakeMeteor.made[0].closed == 1
    assert "meteor" not in CocoText(meteor=False).score({"a": (["a b"], [["a b"]])})["a"]


def test_text_entries_name_units_and_reasons(monkeypatch):
    ctx = ScoreContext("b", {}, text=CocoText(meteor=False))
    corpora = {"": (["a b c d", "e f g h"], [["a b c d"], ["e f g h"]]), "empty": ([], [])}
    out = text_entries(ctx, corpora, note="why")
    assert set(out) == {*METRICS, *(f"empty.{m}" for m in METRICS)}
    assert out["bleu_1"] == {"value": pytest.approx(1.0), "n": 2, "status": "computed", "note": "why"}
    assert out["cider"]["value"] == pytest.approx(10.0)   # identical, disjoint 4-word captions
    assert out["meteor"] == {"value": None, "n": 2, "status": "not computed",
                             "note": "METEOR skipped (--skip-meteor)"}
    assert out["empty.rouge_l"] == {"value": None, "n": 0, "status": "not computed", "note": "no samples"}
    assert "note" not in text_entries(ctx, {"c": (["a b"], [["a b"]])})["c.rouge_l"]
    monkeypatch.setenv("PATH", "")
    out = text_entries(ctx, {"c": (["a b"], [["a b"]])})
    assert out["c.bleu_4"] == {"value": None, "n": 1, "status": "not computed", "note": java_problem()}
    assert "java not found" in out["c.cider"]["note"]
