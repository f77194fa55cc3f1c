"""Models out: each stage's output directory is a plain HF model that `transformers` loads in
a process where the project cannot be imported, and it carries a model card naming the base
model, the curriculum, the data drawn and the audit's verdict."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from train.config import TrainConfig
from train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
CURRICULUM = """
name: export
seed: 5
stages:
  - name: only
    description: One short stage.
    sources: [{pattern: nuscenes/train, weight: 1.0}]
    budget: {samples: 4}
    train: [projector, llm]
    lr: {projector: 1.0e-3, llm: 1.0e-3}
    batch_size: 2
    val: [nuscenes/val]
    val_samples: 2
"""
pytestmark = pytest.mark.filterwarnings("ignore:`torch.distributed.:FutureWarning")

LOAD = textwrap.dedent("""
    import importlib.util, json, sys
    root = sys.argv[2]
    # the project is installed editable: drop its path hook and finder as well as its folders
    sys.path[:] = [p for p in sys.path if p not in ("", ".", root) and not p.startswith(root + "/tests")
                   and "__editable__" not in p]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")
                        and "__editable__" not in repr(f)]
    sys.path_importer_cache.clear()
    assert importlib.util.find_spec("vlm") is None and importlib.util.find_spec("train") is None, sys.path
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer
    model = AutoModelForImageTextToText.from_pretrained(sys.argv[1])
    AutoTokenizer.from_pretrained(sys.argv[1])  # (AutoProcessor needs torchvision for the video processor)
    ids = torch.tensor([[5, 6, 7, 8]])
    print(json.dumps({"class": type(model).__name__,
                      "logits": model(input_ids=ids).logits[0, -1, :5].tolist()}))
""")


@pytest.fixture(scope="module")
def stage_dir(nuscenes_shards, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cur") / "export.yaml"
    path.write_text(CURRICULUM)
    out = tmp_path_factory.mktemp("run") / "export"
    Trainer(TrainConfig(curriculum=str(path), model="tiny", out=out, shards=nuscenes_shards, num_workers=0,
                        progress=False, save_every=0)).train()
    return out / "stages" / "00-only"


def test_transformers_loads_it_without_the_project(stage_dir, tmp_path):
    import json

    from vlm.model import load

    proc = subprocess.run([sys.executable, "-c", LOAD, str(stage_dir), str(ROOT)], cwd=tmp_path,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["class"] == "LlavaOnevisionForConditionalGeneration"
    ours = load(stage_dir).model.eval()
    with torch.no_grad():
        expected = ours(input_ids=torch.tensor([[5, 6, 7, 8]])).logits[0, -1, :5].tolist()
    assert got["logits"] == pytest.approx(expected, abs=1e-5)   # the trained weights, not a fresh init


def test_the_model_card(stage_dir, nuscenes_shards):
    card = (stage_dir / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\nbase_model: tiny\n")
    assert "curriculum `export` (seed 5)" in card
    assert "| nuscenes/train | nuscenes/train | 4 |" in card
    assert "Leakage audit: not audited" in card            # this shard root has no audit
    assert "- val/nuscenes/val: " in card and "- val/loss: " in card
