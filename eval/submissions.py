"""`python -m eval score`: score predictions made elsewhere, in a benchmark's official format.

    python -m eval score BENCHMARK --predictions FILE --references FILE --out DIR [--skip-meteor]

A reader per benchmark, registered by name with `@submission_reader("name")`, turns the
official prediction file and the official annotation file (the one the converter reads;
images are not needed; eval/ may not import converters/, so the few lines that read
them live here) into rows shaped like predictions.jsonl, plus the counts of the
join: predictions matched, references left unanswered, predictions that matched nothing.
Ids are joined as the official script joins them; where the script has no rule, a
reference without a prediction is kept as a failure (empty answer, `error`). Any benchmark
also takes our own predictions.jsonl. The rows then go through the same scorers, and
`DIR/scores.json` and the report are the ones `python -m eval` writes.
"""
from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dataengine.command import OneLineParser, run_command
from dataengine.errors import UsageError

READERS: dict[str, Callable[[Path, Path], "Submission"]] = {}
VARIANT = "submission"
UNANSWERED = "no prediction for this reference"


@dataclass
class Submission:
    rows: list[dict]
    matched: int
    unanswered: int
    unmatched: int
    rule: str                                   # how ids were joined
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict:
        return {"matched": self.matched, "unanswered": self.unanswered, "unmatched_predictions": self.unmatched,
                "join": self.rule, "warnings": self.warnings}


def submission_reader(name: str):
    """Register `fn(predictions, references) -> Submission` as the reader of benchmark `name`."""
    def wrap(fn):
        if name in READERS:
            raise ValueError(f"submission reader {name!r} registered twice")
        READERS[name] = fn
        return fn
    return wrap


def row(benchmark: str, rid: str, question: str, answer: str | None, references: list[str], meta: dict,
        **sample) -> dict:
    """A predictions.jsonl-shaped row; `answer` None marks an unanswered reference (a failure)."""
    return {"benchmark": benchmark, "id": rid, "task": sample.pop("task", "vqa"), "questions": [question],
            "prediction": [answer or ""], "references": [references], "prompt": {"answer_marker": ""},
            "prompt_sha1": "", "error": UNANSWERED if answer is None else None,
            "model": {"label": "external predictions"},
            "decoding": None, "sample": {"meta": meta, **sample}}


def _json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a readable JSON {what} ({type(exc).__name__})") from None


# ---------------------------------------------------------------- LingoQA

def lingoqa_questions(rows: list[dict]) -> list[dict]:
    """Rows grouped by question_id in first-appearance order, as the converter groups them (eval
    may not import converters/): the evaluate.py groupby over question, segment and question."""
    groups: dict[str, dict] = {}
    for r in rows:
        groups.setdefault(r["question_id"], {"question_id": r["question_id"], "rows": []})["rows"].append(r)
    return list(groups.values())


@submission_reader("lingoqa")
def read_lingoqa(predictions: Path, references: Path) -> Submission:
    """Predictions CSV (`question_id,segment_id,answer`, as wayveai/LingoQA benchmark/evaluate.py
    reads it) against the val parquet; joined on question_id and segment_id as its pd.merge
    does (on question_id alone when the CSV has no segment_id). Like the script, only matched
    questions are scored and a partial match is warned about."""
    import pyarrow.parquet as pq

    try:
        table_rows = pq.read_table(references, columns=["question_id", "segment_id", "question", "answer"]).to_pylist()
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several types for a non-parquet file)
        raise UsageError(f"{references}: not a LingoQA parquet ({type(exc).__name__})") from None
    groups = lingoqa_questions(table_rows)
    try:
        with open(predictions, newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{predictions}: not a readable CSV ({type(exc).__name__})") from None
    cols = set(table[0]) if table else set()
    if not {"question_id", "answer"} <= cols:
        raise UsageError(f"{predictions}: a LingoQA predictions CSV needs the columns question_id and answer")
    keys = ("question_id", "segment_id") if "segment_id" in cols else ("question_id",)
    refs = {tuple(g["question_id"] if k == "question_id" else g["rows"][0]["segment_id"] for k in keys): g
            for g in groups}
    rows, used = [], set()
    for i, p in enumerate(table):
        key = tuple(p[k] for k in keys)
        g = refs.get(key)
        if g is None:
            continue
        used.add(key)
        first = g["rows"][0]
        rows.append(row("lingoqa", f"lingoqa-{g['question_id']}-{i}", first["question"], p["answer"] or "",
                        [r["answer"] for r in g["rows"]], {"segment_id": first["segment_id"]}))
    warn = [] if len(rows) == len(groups) else \
        [f"matched {len(rows)} of {len(groups)} questions: scoring a subset (the official script warns the same)"]
    return Submission(rows, len(rows), len(set(refs) - used), len(table) - len(rows), " + ".join(keys), warn)


# ---------------------------------------------------------------- DriveLM

def drivelm_entries(test: dict) -> list[dict]:
    """The official test file's QAs in evaluation.py's order, with the id it looks them up by
    (`<scene>_<frame>_<i>`, i over perception + prediction + planning + behavior)."""
    out = []
    if not isinstance(test, dict):
        raise ValueError("not an object of scenes")
    for scene, sdata in test.items():
        for frame, fdata in sdata["key_frames"].items():
            qa = fdata["QA"]
            flat = [(g, q) for g in ("perception", "prediction", "planning", "behavior") for q in qa[g]]
            for i, (group, q) in enumerate(flat):
                out.append({"id": f"{scene}_{frame}_{i}", "frame": f"{scene}_{frame}", "group": group, "order": i,
                            "Q": q["Q"], "A": q["A"], "tag": list(q["tag"])})
    return out


@submission_reader("drivelm")
def read_drivelm(predictions: Path, references: Path) -> Submission:
    """The challenge's output.json (a list of `{id, question, answer}`) or submission.json (the same
    under `results`) against test_eval.json (tagged QAs, as extract_data.py writes them).
    evaluation.py looks every test QA up by id and has no rule for a missing one (it crashes):
    here a missing one is a failure, scored as an empty answer."""
    test, preds = _json(references, "DriveLM test file"), _json(predictions, "DriveLM output")
    try:
        entries = drivelm_entries(test)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise UsageError(f"{references}: not a DriveLM test file with tagged QAs ({type(exc).__name__}: {exc})") \
            from None
    if isinstance(preds, dict):
        preds = preds.get("results")
    if not isinstance(preds, list) or not all(isinstance(p, dict) and isinstance(p.get("id"), str)
                                              and isinstance(p.get("answer"), str) for p in preds):
        raise UsageError(f"{predictions}: not a DriveLM output (a list of {{id, answer}} objects, or "
                         "submission.json with `results`)")
    by_id = {p["id"]: p["answer"] for p in preds}  # as evaluation.py: a later duplicate id wins
    rows = [row("drivelm", e["id"], e["Q"], by_id.get(e["id"]), [e["A"]],
                {"qa_group": e["group"], "qa_index": e["order"], "order": e["order"], "tag": e["tag"]},
                frame_id=e["frame"], objects=[]) for e in entries]
    ids = {e["id"] for e in entries}
    matched = sum(e["id"] in by_id for e in entries)
    return Submission(rows, matched, len(entries) - matched, len(set(by_id) - ids), "id (<scene>_<frame>_<i>)")


# ---------------------------------------------------------------- nuScenes-QA

def _queue_join(keys: list, preds: list[tuple]) -> tuple[list, int]:
    """Each reference key takes the next unused prediction of that key, in file order; returns
    the answer per reference (None where none is left) and the count of predictions left over."""
    pending: dict = {}
    for key, answer in preds:
        pending.setdefault(key, []).append(answer)
    out = [pending[k].pop(0) if pending.get(k) else None for k in keys]
    return out, sum(len(v) for v in pending.values())


@submission_reader("nuscenes_qa")
def read_nuscenes_qa(predictions: Path, references: Path) -> Submission:
    """The result file result_eval.py writes (`token    question    pred    gt` per line, 4 spaces)
    against NuScenes_val_questions.json. The script pairs answers with questions by position and
    asserts equal counts; here a line is paired with the next question of the same sample_token
    and question text, in order (the same pairing on an aligned file), and a question without a
    line is a failure. The file's gt column is ignored: references come from the questions."""
    data = _json(references, "nuScenes-QA questions file")
    try:
        questions = data["questions"]
        keys = [(q["sample_token"], q["question"]) for q in questions]
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{references}: not a nuScenes-QA questions file ({type(exc).__name__}: {exc})") from None
    try:
        lines = Path(predictions).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{predictions}: not a readable result file ({type(exc).__name__})") from None
    preds = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        f = line.split("    ")
        if len(f) < 4:
            raise UsageError(f"{predictions}:{n}: not `token    question    pred    gt` (4-space separated)")
        preds.append(((f[0], f[1]), "    ".join(f[2:-1])))
    answers, unmatched = _queue_join(keys, preds)
    rows = [row("nuscenes_qa", f"nuscenes_qa-{i}", q["question"], a, [str(q["answer"])],
                {"template_type": q["template_type"], "num_hop": q["num_hop"], "sample_token": q["sample_token"]})
            for i, (q, a) in enumerate(zip(questions, answers))]
    matched = sum(a is not None for a in answers)
    return Submission(rows, matched, len(rows) - matched, unmatched, "sample_token + question, in order")


# ---------------------------------------------------------------- Talk2Car

def xyxy_text(box) -> str:
    """`[x0, y0, w, h]` -> our answer text `[x0, y0, x1, y1]`, numbers as repr writes them (exact)."""
    x, y, w, h = box
    return "[" + ", ".join(repr(v) for v in (x, y, x + w, y + h)) + "]"


@submission_reader("talk2car")
def read_talk2car(predictions: Path, references: Path) -> Submission:
    """talk2car/Talk2Car eval.py's predictions.json (`{command_token: [x0, y0, w, h]}`) against the
    commands file (val_commands.json); the ground truth is `list(map(int, 2d_box))` as eval.py
    takes it. eval.py asserts the key sets are equal; here a command without a prediction, or
    with a value that is not 4 numbers, is a failure (IoU 0)."""
    data, preds = _json(references, "Talk2Car commands file"), _json(predictions, "Talk2Car predictions")
    try:
        cmds = data["commands"]
        gts = {c["command_token"]: [int(v) for v in c["2d_box"]] for c in cmds}
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{references}: not a Talk2Car commands file ({type(exc).__name__}: {exc})") from None
    if not isinstance(preds, dict):
        raise UsageError(f"{predictions}: not a Talk2Car predictions.json ({{command_token: [x0, y0, w, h]}})")
    rows = []
    for c in cmds:
        p = preds.get(c["command_token"])
        ok = isinstance(p, list) and len(p) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                         for v in p)
        answer = xyxy_text(p) if ok else (None if p is None else json.dumps(p))
        rows.append(row("talk2car", f"talk2car-{c['command_token']}", c["command"], answer,
                        [xyxy_text(gts[c["command_token"]])], {"command_token": c["command_token"]},
                        task="grounding.box"))
    matched = sum(t in preds for t in gts)
    return Submission(rows, matched, len(gts) - matched, len(set(preds) - set(gts)), "command_token")


# ---------------------------------------------------------------- BDD-X (RAG-Driver)

BDDX_TURNS = {"action": "What is the action of ego car?", "justification": "Why does the ego car doing this?",
              "control_signal": "Predict the control signal for next frame."}


def _bddx_preds(path: Path) -> dict:
    items = _json(path, "BDD-X predictions")
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and "image_id" in i and isinstance(i.get("caption"), str) for i in items):
        raise UsageError(f"{path}: not a list of {{image_id, caption}} (RAG-Driver's BDDX_Test_pred_*.json)")
    return {i["image_id"]: i["caption"] for i in items}   # a repeated image_id: the last one, as evaluate.py's dict


@submission_reader("bddx")
def read_bddx(predictions: Path, references: Path) -> Submission:
    """RAG-Driver evaluate.py's files: --predictions the folder of BDDX_Test_pred_{action,
    justification,control_signal}.json (lists of `{image_id, caption}`), --references the folder
    of BDDX_Test_coco_{action,justification}.json and BDDX_Test_control_signal.json
    (evalcap/BDDX_gt). Ids are matched as the script does: the captions are scored over the
    predicted image ids only (COCOEvalCap on cocoRes.getImgIds(), in the reference file's image
    order); the control signal over every reference id (the script has no rule for a missing one:
    it crashes), so a missing signal is a failure."""
    predictions, references = Path(predictions), Path(references)
    if not predictions.is_dir() or not references.is_dir():
        raise UsageError("bddx: --predictions and --references are folders (BDDX_Test_pred_*.json, BDDX_gt)")
    preds = {k: _bddx_preds(predictions / f"BDDX_Test_pred_{k}.json") for k in BDDX_TURNS}
    refs, order = {}, []
    for k in ("action", "justification"):
        coco = _json(references / f"BDDX_Test_coco_{k}.json", "COCO caption file")
        try:
            order = order or [img["id"] for img in coco["images"]]
            for ann in coco["annotations"]:
                refs.setdefault(ann["image_id"], {}).setdefault(k, []).append(ann["caption"])
        except (KeyError, TypeError) as exc:
            raise UsageError(f"{references}: BDDX_Test_coco_{k}.json is not a COCO caption file ({exc})") from None
    signals = _json(references / "BDDX_Test_control_signal.json", "control signal file")
    if not isinstance(signals, dict):
        raise UsageError(f"{references}: BDDX_Test_control_signal.json is not {{id: {{speed, course}}}}")
    ids = list(dict.fromkeys(order + list(signals)))
    rows, matched = [], 0
    for i in ids:
        turns = [k for k in ("action", "justification") if i in preds[k] and refs.get(i, {}).get(k)]
        turns += ["control_signal"] if i in signals else []
        matched += any(i in preds[k] for k in BDDX_TURNS)
        answered = [preds[k].get(i) for k in turns]
        meta = {"references": refs.get(i, {}), "bddx_id": i}
        if i in signals:
            meta["control_signal"] = {"speed": signals[i]["speed"], "course": signals[i]["course"]}
        r = row("bddx", f"bddx-{i}", "", "", [], meta, task="caption.driving")
        r.update(questions=[BDDX_TURNS[k] for k in turns], prediction=[a or "" for a in answered],
                 references=[refs.get(i, {}).get(k, [""]) for k in turns],
                 error=None if all(a is not None for a in answered) else UNANSWERED)
        rows.append(r)
    known = set(ids)
    unmatched = len({p for k in BDDX_TURNS for p in preds[k]} - known)
    return Submission(rows, matched, len(ids) - matched, unmatched,
                      "image_id (captions: predicted ids only; signals: every reference id)")


# ---------------------------------------------------------------- MAPLM

MAPLM_CHOICE = "Your potential choice is:"
MAPLM_TYPES = (("SCN", "What kind of road scene"), ("QLT", "What is the point cloud data quality"),
               ("LAN", "How many lanes"), ("INT", "Is there any road cross, intersection or lane change zone"))


def maplm_type(question: str) -> str:
    return next((code for code, prefix in MAPLM_TYPES if question.startswith(prefix)), "OTHER")


def maplm_completion(question: str, conversations: list) -> str | None:
    """run_eval.py's retrieve_completion: the turn after the first turn containing the question
    (its lane-question rewrite included); None where the script would crash."""
    if question == "How many lanes in current road?":
        question = "How many lanes on the current road?"
    for i, turn in enumerate(conversations):
        if isinstance(turn, dict) and question in str(turn.get("value", "")):
            nxt = conversations[i + 1] if i + 1 < len(conversations) else None
            return nxt.get("value") if isinstance(nxt, dict) and isinstance(nxt.get("value"), str) else None
    return None


def _maplm_reference_qas(references: Path) -> list[tuple[str, list[dict]]]:
    """[(frame id, [{question, needle, options, answer_index, answer}])] from the official folder
    (problems.json + pid_splits.json, test split) or a LLaVA-style file (maplm_test.json)."""
    if references.is_dir():
        problems = _json(references / "problems.json", "MAPLM problems.json")
        test = _json(references / "pid_splits.json", "MAPLM pid_splits.json")["test"]
        out = []
        for fid in test:
            qas = []
            for qa in problems[fid]["qa"]:
                closed = qa["task"] == "closed choice"
                qas.append({"question": qa["question"], "needle": qa["question"], "closed": closed,
                            "options": list(qa["choices"]) if closed else None,
                            "answer_index": qa["answer"] if closed else None,
                            "answer": qa["choices"][qa["answer"]] if closed else str(qa["answer"])})
            out.append((fid, qas))
        return out
    out = []
    for rec in _json(references, "MAPLM QA file"):
        qas, turns = [], rec["conversations"]
        for j in range(0, len(turns) - 1, 2):
            question = turns[j]["value"].replace("<image>\n", "").replace("<image>", "").strip()
            if j == 0 and turns[0]["value"].startswith("<image>"):
                continue   # the intro exchange, not scored
            options = None
            if MAPLM_CHOICE in question:
                tail = question.split(MAPLM_CHOICE, 1)[1].strip()
                options = [o.strip().rstrip(".").strip() + "." for o in tail.split(". ") if o.strip().rstrip(".")]
            text = turns[j + 1]["value"].strip().removeprefix("The answer is").strip().rstrip(".").strip()
            hits = [i for i, o in enumerate(options or []) if o.rstrip(".").lower() == text.lower()]
            qas.append({"question": question, "needle": question, "options": options,
                        "closed": maplm_type(question) in ("SCN", "QLT", "LAN", "INT"),
                        "answer_index": hits[0] if len(hits) == 1 else None, "answer": text})
        out.append((rec["id"], qas))
    return out


@submission_reader("maplm")
def read_maplm(predictions: Path, references: Path) -> Submission:
    """run_eval.py's model output (output.json: a list of `{id, conversations}`, the reference turns
    with the model's replies in the gpt turns, as baseline/evaluation/inference.py writes it)
    against problems.json + pid_splits.json (a folder, test split) or maplm_test.json. run_eval.py
    walks the test frames in order and asserts output[i]['id'] equals the i-th frame; here frames
    are joined by id (the same pairing on an aligned file), and a question whose reply cannot be
    retrieved, or a frame without output, is a failure."""
    try:
        frames = _maplm_reference_qas(Path(references))
    except UsageError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise UsageError(f"{references}: not MAPLM references ({type(exc).__name__}: {exc})") from None
    out = _json(predictions, "MAPLM output.json")
    if not isinstance(out, list) or not all(isinstance(f, dict) and isinstance(f.get("conversations"), list)
                                            for f in out):
        raise UsageError(f"{predictions}: not a MAPLM output.json (a list of {{id, conversations}})")
    by_id = {f.get("id"): f["conversations"] for f in out}
    rows = []
    for fid, qas in frames:
        for j, qa in enumerate(qas):
            completion = maplm_completion(qa["needle"], by_id[fid]) if fid in by_id else None
            meta = {"maplm_frame": fid, "question_type": maplm_type(qa["question"]), "options": qa["options"],
                    "answer_index": qa["answer_index"], "answer": qa["answer"],
                    "qa_task": "closed choice" if qa["closed"] else "open"}
            rows.append(row("maplm", f"maplm-{fid}-{j}", qa["question"], completion, [qa["answer"]], meta))
    ids = {fid for fid, _ in frames}
    matched = sum(fid in by_id for fid in ids)
    return Submission(rows, matched, len(ids) - matched, len(set(by_id) - ids), "frame id (output[i]['id'])")


# ---------------------------------------------------------------- DriveBench

@submission_reader("drivebench")
def read_drivebench(predictions: Path, references: Path) -> Submission:
    """An official prediction file (worldbench/drivebench @ 723908f, docs/GET_STARTED.md: the question
    records with `pred`) against `data/visual_description.json`, which evaluate/eval.py reads for the
    judge's object descriptions. The answers travel in the prediction file, so every record is
    matched; its setting comes from the file name (`fog.json`; `noimage.json` is text_only)."""
    from eval.metrics.drivebench import official_desc, parse_official_predictions, setting_of

    try:
        records = parse_official_predictions(predictions)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise UsageError(f"{predictions}: not a DriveBench prediction file ({str(exc)[:200]})") from None
    descriptions = _json(references, "visual_description.json")
    if not isinstance(descriptions, dict):
        raise UsageError(f"{references}: not a visual_description.json (scene token -> key frames)")
    setting = setting_of(predictions)
    rows = [row("drivebench", f"drivebench-{r['frame_token']}-{i}-{setting}", r["question"], r["pred"], [r["answer"]],
                {"setting": setting, "scene_token": r["scene_token"], "frame_token": r["frame_token"],
                 "question_type": r["question_type"], "tag": r["tag"],
                 "desc": official_desc(descriptions, r["scene_token"], r["frame_token"], r["question"])},
                task=f"vqa.{r['question_type']}")
            for i, r in enumerate(records)]
    return Submission(rows, len(rows), 0, 0, "none needed: each record carries its answer")


# ---------------------------------------------------------------- our own predictions.jsonl

def read_own(benchmark: str, predictions: Path) -> Submission:
    """Our predictions.jsonl: the rows carry their references; the benchmark's rows are kept."""
    from eval.predictions import load_predictions

    try:
        rows = load_predictions(predictions)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001  (a malformed line of any kind)
        raise UsageError(f"{predictions}: not a predictions.jsonl ({exc})") from None
    mine = [r for r in rows if r.get("benchmark") == benchmark]
    answered = sum(1 for r in mine if not r.get("error"))
    return Submission(mine, answered, len(mine) - answered, len(rows) - len(mine),
                      "benchmark rows of predictions.jsonl")


# ---------------------------------------------------------------- the command

def load(benchmark: str, predictions: Path, references: Path | None) -> Submission:
    if str(predictions).endswith(".jsonl"):
        sub = read_own(benchmark, predictions)
    elif benchmark not in READERS:
        raise UsageError(f"no reader of {benchmark}'s official prediction format (have: {', '.join(sorted(READERS))}); "
                         "pass our predictions.jsonl instead")
    elif references is None or not Path(references).is_file():
        raise UsageError(f"--references {references}: no such file (the benchmark's official annotation file)")
    elif not Path(predictions).is_file():
        raise UsageError(f"--predictions {predictions}: no such file")
    else:
        sub = READERS[benchmark](Path(predictions), Path(references))
    if sub.matched == 0:
        raise UsageError(f"{predictions}: no prediction matches a reference of {benchmark} (join on {sub.rule})")
    return sub


def score(benchmark: str, predictions: Path, references: Path | None, out: Path, meteor: bool = True,
          benchmarks_dir: Path | None = None) -> dict:
    """Score one benchmark's external predictions into `out` (predictions.jsonl, scores.json, report)."""
    from eval import report
    from eval.registry import load_registry
    from eval.score import score_variant

    registry = load_registry(benchmarks_dir)
    if benchmark not in registry.benchmarks:
        raise UsageError(f"unknown benchmark {benchmark!r} (have: {', '.join(sorted(registry.benchmarks))})")
    bench = registry.benchmarks[benchmark]
    sub = load(benchmark, Path(predictions), references)
    variant = Path(out) / VARIANT
    variant.mkdir(parents=True, exist_ok=True)
    with open(variant / "predictions.jsonl", "w", encoding="utf-8") as f:
        for r in sub.rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    scores = score_variant(variant, [bench], {}, meteor=meteor)
    scores["benchmarks"][benchmark]["submission"] = sub.counts()
    scores["submission"] = {"predictions": str(predictions), "references": str(references) if references else None}
    text = json.dumps(scores, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (variant / "scores.json").write_text(text)
    (Path(out) / "scores.json").write_text(text)
    groups = {name: g for g, names in registry.groups.items() for name in names}
    basis = {"benchmarks": {}, "basis": "not assessed (external predictions)"}
    report.write(Path(out), {VARIANT: scores}, groups, basis, [benchmark])
    return scores


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m eval score", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmark", help="benchmark name (a reader is registered for: " + ", ".join(sorted(READERS)) + ")")
    p.add_argument("--predictions", required=True, help="the other model's predictions, in the official format")
    p.add_argument("--references", help="the benchmark's official annotation file (not needed for predictions.jsonl)")
    p.add_argument("--out", required=True, help="output folder: scores.json and the report")
    p.add_argument("--skip-meteor", action="store_true", help="leave METEOR out")
    p.add_argument("--benchmarks-dir", help="extra benchmark YAMLs")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        scores = score(args.benchmark, Path(args.predictions), Path(args.references) if args.references else None,
                       Path(args.out), meteor=not args.skip_meteor,
                       benchmarks_dir=Path(args.benchmarks_dir) if args.benchmarks_dir else None)
        b = scores["benchmarks"][args.benchmark]
        c = b["submission"]
        print(f"{args.benchmark}: {c['matched']} predictions matched, {c['unanswered']} references unanswered, "
              f"{c['unmatched_predictions']} predictions matched nothing (join on {c['join']})")
        for w in c["warnings"]:
            print(f"WARNING: {w}")
        for h in b.get("headline", []):
            print(f"  {h['metric']}: {b['metrics'].get(h['metric'], {}).get('value')}")
        print(f"wrote {Path(args.out) / 'scores.json'} and {Path(args.out) / 'report.md'}")
        return 0

    return run_command("eval score", body)

