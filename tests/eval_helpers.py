"""Test doubles for evaluation: a predictor that answers with the references (every metric at
its best), one that answers a fixed text, and a stub OpenAI-compatible judge server, and a judge answered by a function."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dataengine.reader import DatasetReader
from eval.judge import Judge, JudgeConfig
from eval.predictor import Generation
from eval.prompting import turns
from vlm.vision import MediaDecoder


class OraclePredictor:
    """Answers turn k of a sample with its reference answer k."""

    decode = MediaDecoder("llava_onevision", 28)   # the tiny model's image path

    def __init__(self, shards: Path, parts: list[tuple[str, str]], label: str = "oracle"):
        self.answers = {}
        for dataset, split in parts:
            for stored in DatasetReader(shards, dataset, split):
                self.answers[stored.key] = [t.reference for t in turns(stored.sample)]
        self.identity = {"model": "oracle", "label": label}
        self.calls = 0

    def generate(self, requests, decoding):
        self.calls += 1
        out = []
        for r in requests:
            k = sum(1 for t in r.conversation if t["role"] == "user") - 1
            out.append(Generation(self.answers[r.key][k]))
        return out


class FixedPredictor:
    """Answers every question with the same text (or fails every sample with `error`)."""

    decode = MediaDecoder("llava_onevision", 28)   # the tiny model's image path

    def __init__(self, text: str = "", error: str | None = None):
        self.text, self.error = text, error
        self.identity = {"model": "fixed", "label": f"fixed {text!r}"}

    def generate(self, requests, decoding):
        return [Generation("" if self.error else self.text, self.error) for _ in requests]


class StubJudge:
    """A local HTTP server speaking OpenAI's chat/completions; replies with `reply(messages)`."""

    def __init__(self, reply):
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                            "content": reply(body["messages"])}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def row(pred, refs, task="vqa.x", questions=None, marker="", **sample):
    preds = pred if isinstance(pred, list) else [pred]
    refs = refs if isinstance(refs[0], list) else [refs]
    return {"benchmark": "b", "id": f"r{id(preds)}", "task": task, "prediction": preds, "references": refs,
            "questions": questions or ["q"] * len(preds), "prompt": {"answer_marker": marker},
            "sample": {"meta": {}, **sample}}


T1, T2 = "<c1,CAM_FRONT,100.0,200.0>", "<c2,CAM_BACK,300.0,400.0>"
OBJECTS = [{"description": "White sedan.", "tag": T1}, {"description": "Red SUV.", "tag": T2}]


def drivelm_rows(preds):
    qas = [("perception", 0, "What are the important objects?", f"A white sedan {T1} and a red suv {T2}."),
           ("perception", 1, f"What is the moving status of object {T1}?", "Moving."),
           ("perception", 2, "What is in front?", "A car."),
           ("prediction", 0, f"Is {T2} a traffic sign?", "No."),
           ("prediction", 1, "Which objects should the ego vehicle watch?", f"Watch {T1} and {T2}."),
           ("planning", 0, f"What actions could the ego vehicle take based on {T1}?", "Keep going."),
           ("behavior", 0, "Predict the behavior of the ego vehicle.", "Going straight.")]
    return [row(p, [a], task=f"vqa.{g}", questions=[q], frame_id="nuscenes:f1", objects=OBJECTS,
                meta={"qa_group": g, "qa_index": i}) for (g, i, q, a), p in zip(qas, preds)]


class ScriptedJudge(Judge):
    """A Judge whose endpoint answers `reply(user message)` (no HTTP)."""

    def __init__(self, reply):
        super().__init__(JudgeConfig("http://judge.test/v1", "m"))
        self.reply, self.asked = reply, []

    def _post(self, messages):
        self.asked.append(messages)
        return self.reply(messages[1]["content"])
