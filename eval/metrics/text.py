"""BLEU-1..4, METEOR, ROUGE-L and CIDEr exactly as the COCO caption evaluation computes them.

pycocoevalcap 1.2 (salaniz/pycocoevalcap, the tylin/coco-caption lineage that the DriveLM
challenge's `language_evaluation.CocoEvaluator` bundles too): the Stanford PTB tokenizer
(`-preserveLines -lowerCase`, Java), punctuation tokens dropped; corpus BLEU with the
"closest" reference length; METEOR 1.5 (`-l en -norm`, Java); ROUGE-L F with beta 1.2
against the best reference; CIDEr-D with IDF from the scored references themselves (so a
one-sample corpus scores 0 and CIDEr changes with the subset). Scores are on the 0-1
scale (CIDEr 0-10). Each corpus is scored as a whole, never averaged per sample.

The tokenizer is called as the official evaluators call it: per corpus, once on all references
and once on all hypotheses, in key order. Two differences in how it is called, not in what
it computes: the same jar and
options are run on stdin (pycocoevalcap writes a temporary file into its own package
folder, which fails on a read-only install, and lets Java's warnings through), and
control characters in a text become spaces first (the tokenizer works line by line; a
stray line separator from a model would shift every later caption onto the wrong
references; coco-caption only replaces newlines). The line count is checked.
"""
from __future__ import annotations

import shutil
import subprocess
import unicodedata
from pathlib import Path

from eval.metrics.core import missing, value

METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")
LIBRARY = "pycocoevalcap 1.2 (PTB tokenizer, coco-caption 0-1 scale; CIDEr-D 0-10)"


def clean(text: str) -> str:
    """Control and line-separator characters become spaces."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


def ptb_tokenize(texts: list[str]) -> list[str]:
    """Lower-cased PTB tokens joined by spaces, punctuation tokens dropped (coco-caption's rule)."""
    import pycocoevalcap.tokenizer.ptbtokenizer as ptb

    jar = Path(ptb.__file__).with_name(ptb.STANFORD_CORENLP_3_4_1_JAR)
    cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
    lines = [clean(t).replace("\n", " ") for t in texts]
    done = subprocess.run(cmd, input="\n".join(lines).encode("utf-8"), capture_output=True, check=True)
    out = done.stdout.decode("utf-8").split("\n")
    out = (out + [""] * len(lines))[:len(lines)] if len(out) <= len(lines) + 1 else out
    if len(out) != len(lines) or any(out[len(lines):]):
        raise RuntimeError(f"PTB tokenizer returned {len(out)} lines for {len(lines)} captions")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in ptb.PUNCTUATIONS) for line in out]


def java_problem() -> str | None:
    return None if shutil.which("java") else "java not found (pycocoevalcap's PTB tokenizer and METEOR need Java 17)"


class CocoText:
    """Scores corpora as the official evaluators do: per corpus, all references in one tokenizer
    call and all hypotheses in another, in key order (the PTB tokenizer reads abbreviations
    across lines, so a caption's tokens depend on its neighbours); one METEOR process."""

    def __init__(self, meteor: bool = True):
        self.use_meteor = meteor
        self._meteor = None

    def score(self, corpora: dict[str, tuple[list[str], list[list[str]]]]) -> dict[str, dict[str, float]]:
        """{corpus: (hypotheses, references per hypothesis)} -> {corpus: {metric: value}};
        empty corpora are left out. METEOR is absent when disabled."""
        corpora = {name: c for name, c in corpora.items() if c[0]}
        out = {}
        for name, (hyps, refs) in corpora.items():
            if len(hyps) != len(refs) or any(not r for r in refs):
                raise ValueError(f"corpus {name}: every hypothesis needs at least one reference")
            flat = ptb_tokenize([r for rs in refs for r in rs])
            res = {i: [t] for i, t in enumerate(ptb_tokenize(hyps))}
            gts, k = {}, 0
            for i, rs in enumerate(refs):
                gts[i], k = flat[k:k + len(rs)], k + len(rs)
            out[name] = self._corpus(gts, res)
        return out

    def _corpus(self, gts: dict, res: dict) -> dict[str, float]:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        scores = {f"bleu_{n + 1}": float(b) for n, b in enumerate(bleu)}
        scores["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
        scores["cider"] = float(Cider().compute_score(gts, res)[0])
        if self.use_meteor:
            scores["meteor"] = float(self.meteor().compute_score(gts, res)[0])
        return scores

    def meteor(self):
        if self._meteor is None:
            from pycocoevalcap.meteor.meteor import Meteor

            self._meteor = Meteor()
        return self._meteor

    def close(self) -> None:
        """Stop the METEOR JVM now rather than at garbage collection."""
        meteor, self._meteor = self._meteor, None
        if meteor is not None:
            meteor.__del__()


def text_entries(ctx, corpora: dict[str, tuple[list[str], list[list[str]]]], note: str = "") -> dict[str, dict]:
    """Scorer entries `<corpus>.<metric>` for each corpus (corpus "" gives bare metric names)."""
    out: dict[str, dict] = {}
    problem = java_problem()
    scores = {} if problem else ctx.text.score(corpora)
    for name, (hyps, _) in corpora.items():
        prefix = f"{name}." if name else ""
        for metric in METRICS:
            key = prefix + metric
            if problem or not hyps:
                out[key] = missing(problem or "no samples", len(hyps))
            elif metric not in scores[name]:
                out[key] = missing("METEOR skipped (--skip-meteor)", len(hyps))
            else:
                out[key] = value(scores[name][metric], len(hyps), **({"note": note} if note else {}))
    return out
