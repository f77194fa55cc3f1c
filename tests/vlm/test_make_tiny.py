"""`python -m vlm.make_tiny`: a tiny model directory whose tokenizer is BPE learned from the
training splits only, spelled like Qwen2's (digits one by one), deterministic, lossless, and
read back by the same loader a released checkpoint goes through."""
from __future__ import annotations

import pytest
from synthetic_shards import jpeg, record, write_split

from vlm.make_tiny import main, training_splits
from vlm.model import load
from vlm.tiny import SPECIALS, learned_tokenizer

CORPUS = ["Plan the ego vehicle's trajectory for the next 3 s.", "Keep going straight along the current lane.",
          "[(4.00, 0.00), (8.00, 0.00), (12.00, 0.00)]"] * 50


def test_learned_tokenizer_is_deterministic_and_merges_words_not_digits():
    a, b = learned_tokenizer(CORPUS, 400), learned_tokenizer(iter(CORPUS), 400)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    tokens = a.tokenize(" trajectory straight 2026")
    assert "Ġtrajectory" in tokens and "Ġstraight" in tokens       # words seen 50 times are one token
    assert tokens[-4:] == ["2", "0", "2", "6"]                       # digit by digit, as Qwen2 spells numbers
    assert len(a("Keep going straight along the current lane.")["input_ids"]) <= 10   # 44 bytes


def test_learned_tokenizer_keeps_every_byte_and_the_specials():
    tok = learned_tokenizer(CORPUS, 400)
    text = "Zürich 東京 <image> naïve\ttab"        # characters the corpus never had
    assert tok.decode(tok(text)["input_ids"]) == text
    for special in SPECIALS:
        assert tok.convert_ids_to_tokens(tok(special)["input_ids"]) == [special]
    assert tok.image_token_id == tok.convert_tokens_to_ids("<image>")
    assert tok.video_token_id == tok.convert_tokens_to_ids("<video>")
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"


def _root(tmp_path):
    root = tmp_path / "shards"
    word = {"train": "kumquat", "val": "persimmon"}
    for split in ("train", "val"):
        recs = [record("alpha", split, f"a{i}", f"alpha:s{i}", f"alpha:{split}{i}", [jpeg(i)],
                       turns=[f"Is there a {word[split]}?", f"Yes, a {word[split]} ahead."]) for i in range(40)]
        write_split(root, "alpha", split, recs)
    held = [record("talk2car", "train", f"t{i}", f"talk2car:t{i}", f"talk2car:t{i}", [jpeg(i)],
                   turns=["Where is the tamarillo?", "The tamarillo is left."]) for i in range(40)]
    write_split(root, "talk2car", "train", held)      # an unseen benchmark's dataset: never learned from
    return root


def test_make_tiny_learns_from_seen_training_splits_only_and_loads_as_a_checkpoint(tmp_path, capsys):
    root = _root(tmp_path)
    assert training_splits(root) == [("alpha", "train")]
    out = tmp_path / "model"
    assert main(["--shards", str(root), "--out", str(out), "--vocab", "600"]) == 0
    bundle = load(out)
    tok = bundle.tokenizer
    # merges stop when no pair repeats: a small corpus gives fewer than asked, and says so
    assert f"vocabulary {len(tok)}," in capsys.readouterr().out and 261 < len(tok) <= 600
    assert tok.tokenize(" kumquat") == ["Ġkumquat"]
    assert len(tok.tokenize(" persimmon")) > 1 and len(tok.tokenize(" tamarillo")) > 1
    assert bundle.model.config.text_config.vocab_size == len(tok)
    assert bundle.model.config.image_token_index == tok.image_token_id
    assert bundle.chat.name == "chatml" and bundle.spec.family == "llava_onevision"
    again = tmp_path / "again"
    assert main(["--shards", str(root), "--out", str(again), "--vocab", "600"]) == 0
    for name in ("tokenizer.json", "model.safetensors"):
        assert (out / name).read_bytes() == (again / name).read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--vocab", "300"], "--vocab 300: at least 512"),
    (["--family", "big"], "invalid choice: 'big'"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["--shards", str(tmp_path), "--out", str(tmp_path / "m"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_root_without_seen_training_splits_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--shards", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"make_tiny: error: {tmp_path}: no training split of a seen dataset to learn a tokenizer from"
