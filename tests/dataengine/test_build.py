"""`dataengine build`: a corpus file into one root in order; a rerun does nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from dataengine.build import BuildConfig, build, read_corpus
from dataengine.cli import main
from dataengine.mediastore import media_dir, read_index


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_converts_in_order_then_a_rerun_does_nothing(tmp_path, ray_session, capsys):
    corpus = tmp_path / "corpus.yaml"
    # talk2car listed first: nuScenes is still converted first
    corpus.write_text("out: shards\nsources:\n  - {dataset: talk2car, fixture: raw/talk2car}\n"
                      "  - {dataset: nuscenes, fixture: raw/nuscenes}\n")
    cfg = BuildConfig(corpus=corpus, workers=2, progress=False)
    out, sources = read_corpus(cfg)
    assert out == Path.cwd() / "shards" and [s.dataset for s in sources] == ["nuscenes", "talk2car"]
    cfg = BuildConfig(corpus=corpus, out=tmp_path / "shards", workers=2, progress=False)
    first = build(cfg)
    assert not first["up_to_date"] and all(r["converted"] for r in first["rows"])
    assert [r["dataset"] for r in first["rows"]][:2] == ["nuscenes", "nuscenes"]
    assert set(first["checked"]) == {f"{r['dataset']}/{r['split']}" for r in first["rows"]}
    root = tmp_path / "shards"
    assert (root / "CARDS.md").exists() and (root / "audit").is_dir() and len(read_index(root)) > 0
    before = snapshot(root)
    assert main(["build", str(corpus), "--out", str(root)]) == 0
    printed = capsys.readouterr().out
    assert "nothing to do" in printed and "talk2car" in printed and "up to date" in printed
    assert snapshot(root) == before  # not one file rewritten
    assert media_dir(root).is_dir()


@pytest.mark.parametrize("text, message", [
    ("out: s\nsources: []\n", "needs a non-empty `sources:` list"),
    ("out: s\nsources:\n  - {dataset: nuscenes}\n", "needs `dataset` and one of `src` or `fixture`"),
    ("out: s\nsources:\n  - {dataset: nuscenes, src: x, colour: red}\n", "unknown keys ['colour']"),
    ("out: s\nsources:\n  - {dataset: nope, src: x}\n", "nope"),
    ("sources:\n  - {dataset: nuscenes, src: x}\n", "no `out:` in the file; give --out"),
    ("sources: [\n", "not YAML"),
])
def test_bad_corpus_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    corpus = tmp_path / "c.yaml"
    corpus.write_text(text)
    assert main(["build", str(corpus)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
