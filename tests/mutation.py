"""`make mutation`: mutmut over the modules whose bugs would silently corrupt data or numbers.

Each module runs on its own, in a scratch copy of the repository (mutmut rewrites the files it
mutates; the checkout is never touched), against its own fast test files only (`-x`, no
`slow`), one module after another. The per-module counts go into the report section of
docs/testing.md; a surviving mutant is either given a test or listed in EQUIVALENT with the
reason it cannot change behaviour.

    python tests/mutation.py                      # every module below, then rewrite the report
    python tests/mutation.py dataengine/schema.py # one module (its row of the report is updated)
    python tests/mutation.py --survivors MODULE   # rerun only the module's last survivors (after new tests)

`--survivors` keeps the last full run's killed mutants and re-tests only its survivors; it
refuses when the module's source changed since that run (its sha256 differs, or a survivor's
diff no longer reads as recorded), since mutant names are then no longer the same mutants.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "testing.md"
RESULTS = ROOT / "docs" / "mutation-results.json"
PACKAGES = ["dataengine", "converters", "curricula", "vlm", "train", "eval"]
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", "-o", "addopts="]

# module -> the test files that own it (fast ones: a mutant run repeats them hundreds of times);
# a node id picks one test of a file whose other tests are slow (Java) and test other modules
MODULES: dict[str, list[str]] = {
    "dataengine/schema.py": ["tests/dataengine/test_schema.py"],
    "dataengine/trajectory.py": ["tests/dataengine/test_trajectory.py"],
    "dataengine/cameras.py": ["tests/dataengine/test_cameras.py"],
    "dataengine/shards.py": ["tests/dataengine/test_shard_rollover.py", "tests/dataengine/test_shards_mutants.py"],
    "dataengine/staging.py": ["tests/dataengine/test_staging_mutants.py"],
    "curricula/sampler.py": ["tests/curricula/test_sampler.py", "tests/curricula/test_sampler_mutants.py"],
    # every test of test_loader.py but the nuScenes demo one (its fixture converts through Ray: ~10 s a mutant)
    "curricula/loader.py": [f"tests/curricula/test_loader.py::test_{t}" for t in (
        "same_order_across_runs_and_worker_counts", "workers_leave_the_global_torch_rng_alone",
        "exact_resume_continues_with_the_next_batch", "rank_slices_are_disjoint_and_cover_the_stage",
        "loaded_samples_are_decoded_rendered_and_counted", "images_match_a_full_decode_resized",
        "overlength_samples_never_reach_the_loader", "realized_mixture_matches_the_plan_and_survives_resume",
        "next_stage_starts_at_zero_and_glob_sources_resolve", "resume_refuses_a_changed_plan_or_global_batch",
        "a_stage_without_data_is_a_usage_error")] + ["tests/curricula/test_loader_mutants.py"],
    "vlm/encode.py": ["tests/vlm/test_encode.py", "tests/vlm/test_encode_mutants.py"],
    "train/optim.py": ["tests/train/test_optim_mutants.py"],
    "eval/metrics/planning.py": ["tests/eval/test_metrics.py", "tests/eval/test_conformance_planning.py",
                                 "tests/eval/test_planning_mutants.py"],
    "eval/metrics/drivelm.py": ["tests/eval/test_drivelm_mutants.py", "tests/eval/test_conformance_drivelm.py"],
    "eval/metrics/qa.py": ["tests/eval/test_metrics.py", "tests/eval/test_conformance_nuscenes_qa.py",
                           "tests/eval/test_conformance_maplm.py", "tests/eval/test_qa_mutants.py"],
    "eval/metrics/grounding.py": ["tests/eval/test_metrics.py::test_talk2car_iou_and_ap50",
                                  "tests/eval/test_grounding_mutants.py"],
    "eval/metrics/captions.py": ["tests/eval/test_captions_mutants.py",
                                 "tests/eval/test_conformance_bddx.py::test_control_signal_equals_official"],
    "eval/metrics/text.py": ["tests/eval/test_text_mutants.py", "tests/eval/test_conformance_text.py"],
    "eval/metrics/nuinstruct.py": ["tests/eval/test_metrics.py::test_nuinstruct_subtask_metrics",
                                   "tests/eval/test_nuinstruct_mutants.py"],
    "eval/metrics/omnidrive.py": ["tests/eval/test_metrics.py::test_omnidrive_counterfactual_classes",
                                  "tests/eval/test_omnidrive_mutants.py"],
    "eval/metrics/core.py": ["tests/eval/test_core_mutants.py", "tests/eval/test_grounding_mutants.py",
                             "tests/eval/test_omnidrive_mutants.py"],
    "eval/metrics/judged.py": ["tests/eval/test_judged_mutants.py"],
    "eval/metrics/drivebench.py": ["tests/eval/test_drivebench_mutants.py",
                                   "tests/eval/test_drivebench_metrics.py::test_preprocess_answer_matches_the_official_rule"],
}

# mutant name -> why no test can tell it from the original (reviewed by hand)
_DT_DEFAULT = "`traj.get('dt_s', d)` runs only after `_is_num(traj.get('dt_s'))` passed: the key is there"
EQUIVALENT: dict[str, str] = {
    "dataengine.schema.x__check_optional__mutmut_61": _DT_DEFAULT,
    "dataengine.schema.x__check_optional__mutmut_63": _DT_DEFAULT,
    "dataengine.schema.x__check_optional__mutmut_66": _DT_DEFAULT,
    "dataengine.schema.x__finite_numbers__mutmut_1": "the float fast path skipped: the slow `_is_num` path "
                                                     "gives the same answer (the fast path exists for speed)",
    "dataengine.trajectory.x_ego_motion__mutmut_86": "`(d - pi) % 2pi` equals `(d + pi) % 2pi`: the two differ by 2pi",
    "dataengine.trajectory.x_ego_motion__mutmut_120": "`clean(yaw_rate, )` is `clean`'s default of 4 digits",
    "dataengine.trajectory.x_track_motion__mutmut_12": "`ego_motion` reads only x, y of `position`: a third row is unused",
    "dataengine.trajectory.x_track_motion__mutmut_16": "`matrix_yaw` reads rot[0, 0] and rot[1, 0] only: extra rows unused",
    "dataengine.trajectory.x_track_motion__mutmut_17": "`matrix_yaw` reads rot[0, 0] and rot[1, 0] only: extra columns unused",
    **{f"dataengine.shards.x_{f}__mutmut_{n}": why for f, n, why in (
        ("_header", 11, "a name of exactly 100 bytes fills tarfile's name field as the template does: same header"),
        *((f, n, "'UTF-8' is the codec 'utf-8'") for f, n in (("_header", 7), ("_header", 25), ("_template", 16))),
        *((f, n, "`tobuf`'s default errors is 'surrogateescape'") for f, n in (("_header", 19), ("_template", 8))),
        ("_template", 14, "the template's size field is replaced in every header and left out of its sum"),
        *(("_template", n, "the template's strings (empty name, user and group) are ASCII: no error handler "
           "is ever called") for n in (17, 18)),
        ("sample_json", 12, "`where` None is falsy like '': the same paths, and 'value' for a bare number"),
    )},
    **{f"dataengine.shards.xǁTarShardWriterǁ{f}__mutmut_{n}": why for f, n, why in (
        *(("__init__", n, "the first write opens a part (`_fd` is None), which sets both to 0") for n in (7, 8)),
        *(("close", n, "after close `_fd` is None: the next write opens a part, which sets `_pos` to 0")
          for n in (6, 7)),
        ("write_members", 12, "a part's position is a multiple of 512: `> 1` and `> 0` agree"),
    )},
    "dataengine.staging.x__atomic_json__mutmut_4": "the temporary file's name is never read (the ledger is "
                                                   "`done/*.json`): '.TMP' is as good as '.tmp'",
    **{f"dataengine.staging.x__commit_media__mutmut_{n}": "the record's name is written and read only here, in "
       "the work dir that finalize removes: any fixed name works alike" for n in (4, 5)},
    **{f"eval.metrics.planning.x_obstacles__mutmut_{n}": "a box without a category gets a default that starts "
       "with no class either way ('', 'None', 'XXXX')" for n in (12, 14, 17)},
    **{f"eval.metrics.planning.x_collisions__mutmut_{n}": "`np.array` of Python bools is a bool array without "
       "`dtype=bool`" for n in (2, 4)},
    "eval.metrics.planning.x_overlap__mutmut_5": "edges taken backwards (i - 1) are the same edges negated: the "
                                                 "same separating axes up to sign",
    "eval.metrics.planning.x_parse_plan__mutmut_10": "with no reply, '' or 'XXXX' alike hold no waypoints",
    **{f"eval.metrics.planning.x_parse_plan__mutmut_{n}": "`extract_answer` reads a None marker as no marker"
       for n in (17, 19)},
    "eval.metrics.planning.x_parse_plan__mutmut_28": "a row without a marker gets the default 'XXXX' instead of '': "
                                                     "differs only for a reply that contains 'XXXX'",
    **{f"eval.metrics.planning.x_{f}__mutmut_{n}": "`parse_waypoints` returns floats, and an int ground truth gives "
       "the same distances and cells: dtype=float changes nothing" for f, n in (
           ("parse_plan", 34), ("parse_plan", 36), ("_gt", 16), ("_gt", 18))},
    **{f"eval.metrics.planning.x__gt__mutmut_{n}": "`to_ego` reads every frame but 'lidar_xright_yfwd' as the ego "
       "frame: the default's spelling does not matter" for n in (22, 24, 27, 28)},
    "eval.metrics.planning.x_occupancy__mutmut_9": "dividing by [1, -1] is multiplying by [1, -1]",
    "eval.metrics.planning.x_grid_collisions__mutmut_9": "`lidar[:, 1:3]` of a 2-column array is `lidar[:, 1:2]`",
    **{f"eval.metrics.planning.x_grid_collisions__mutmut_{n}": "`np.array` of numpy bools (`.any()`) is a bool "
       "array without `dtype=bool`" for n in (41, 43)},
    "eval.metrics.qa.x_normalize_nuscenes_qa__mutmut_18": "no two answers of one kind match at one position "
                                                         "(none is a word prefix of another): `<`, `<=` agree",
    "eval.metrics.qa.x_exact_answer__mutmut_10": "with no reply, '' or 'XXXX' alike equal no reference answer",
    **{f"eval.metrics.qa.x_exact_answer__mutmut_{n}": "a None marker is falsy like '': the text is kept whole"
       for n in (13, 15)},
    "eval.metrics.qa.x_exact_answer__mutmut_24": "a row without a marker gets the default 'XXXX' instead of '': "
                                                 "differs only for a reply that contains 'XXXX'",
    **{f"eval.metrics.qa.x_maplm_correct__mutmut_{n}": "the MAPLM converter always writes meta.answer: the "
       "default is never read" for n in (28, 30, 33)},
    "eval.metrics.qa.x_answer_of__mutmut_10": "with no reply, '' or 'XXXX' alike normalise to no reference answer",
    **{f"eval.metrics.qa.x_answer_of__mutmut_{n}": "a None marker is falsy like '': the text is kept whole"
       for n in (16, 18)},
    **{f"curricula.sampler.x_{f}__mutmut_{n}": why for f, n, why in (
        ("_splitmix64", 1, "numpy checks no overflow in integer array arithmetic: `errstate` changes nothing"),
        ("_tokens_at", 3, "token counts are exact in float64 too: sums and comparisons agree"),
        ("_tokens_at", 5, "token counts are exact in float64 too: sums and comparisons agree"),
        ("allocate", 11, "with no free source or nothing left, one more round shares nothing"),
        ("allocate", 13, "with nothing left (0) one more round shares 0 to the free sources"),
        ("allocate", 23, "a share exactly at its cap is allocated the cap whether fixed now or not"),
        ("allocate", 33, "an exact integer floored one lower gets remainder 1 and the unit back"),
        *((("allocate", n, "positive remainders sum to the shortfall and each is < 1, so more sources have one "
            "than units are short: a source at its cap (remainder 0) is never reached") for n in (45, 53, 55))),
        ("allocate", 63, "numpy reads the sort kind 'STABLE' as 'stable'"),
        ("draw_order", 20, "numpy reads the sort kind 'STABLE' as 'stable'"),
        ("group_by_length", 20, "numpy reads the sort kind 'STABLE' as 'stable'"),
        ("draw_order", 8, "an empty source: one pass over nothing is the same empty int64 order"),
        ("draw_order", 15, "`hashes & salt` still orders distinct keys by a salted, per-pass hash; only the mixing "
                           "quality drops, which no test-size data shows"),
        ("build_plan", 16, "a list of Python ints is an int64 array without dtype"),
        ("build_plan", 18, "a list of Python ints is an int64 array without dtype"),
        ("build_plan", 43, "with every weight 0, `_stage_length`'s draws come out empty too: same empty plan and "
                           "warnings"),
        ("build_plan", 54, "with every weight 0, one draw allocates nothing: same empty plan and warnings"),
        ("build_plan", 39, "a source without eligible samples has weight 0: 0 draws, and `means[weights > 0]` "
                           "skips it, so its mean is never used"),
        ("eligibility", 4, "a 0-d '' broadcasts like a row of ''"),
        ("eligibility", 6, "a unicode array of '' compares like an object one"),
        ("eligibility", 9, "a unicode array of '' compares like an object one"),
        ("interleave", 11, "an empty or one-draw interleave comes out the same either way"),
        ("interleave", 19, "every source's times shift by -2 alike: the order by time is unchanged"),
        ("num_steps", 2, "ceil(0 / G) is 0 too"),
        ("target_weights", 2, "astype(None) is float64"),
        ("target_weights", 11, "0 ** (1 / T) is 0: an empty source still gets weight 0"),
        *((("fingerprint", n, "the fingerprint is a cache key: another spelling or key order of the same inputs "
            "is still a deterministic function of exactly those inputs") for n in (19, 20, 21, 22, 23, 24, 25, 26, 30,
                                                                                  32, 33))),
        *((("_meta", n, "key order of the stored meta JSON: the same plan reads back") for n in (2, 4, 17))),
        *((("_write_npz", n, "any fixed member timestamp keeps the same plan the same bytes ((1980, 1, 1, 0, 0, 0) "
            "is also ZipInfo's default)") for n in (14, 15, 16, 17, 18, 19, 20))),
        *((("_write_npz", n, "numeric and unicode arrays never need pickle") for n in (25, 28, 29))),
        *((("_stage_length", n, "only sizes the first draw before the cut at the budget (binary search start, step, "
            "margin): the plan still stops at the first draw reaching the budget with the target shares; which "
            "such order comes out is not specified") for n in (23, 24, 33, 34, 37, 40, 43, 50, 54, 60, 62, 63))),
        *((("_draw_to_budget", n, "a give-up test that the next round's `len(source) < n` makes anyway")
           for n in (40, 41, 43, 44))),
        *((("_draw_to_budget", n, "only changes how many draws are made before the cut at the budget (growth "
            "factor, a later check): the plan still stops at the first draw reaching it") for n in (30, 31, 51))),
    )},
    **{f"eval.metrics.nuinstruct.x__f1__mutmut_{n}": "both sets empty returns 1.0 before this line: with one "
       "empty, tp is 0 and 2 * 0 / n is 0.0 too" for n in (7, 12, 13)},
    **{f"eval.metrics.nuinstruct.x_{f}__mutmut_{n}": "prediction and reference go through the same normalisation: "
       "upper or lower case, or another separator no word can hold, compares alike" for f, n in (
           ("_objects", 1), ("_objects", 2), ("_words", 2))},
    **{f"curricula.loader.x{f}__mutmut_{n}": why for f, n, why in (
        *(((f, n, "`realized_mixture` reads None like {} (falsy): it recounts from the state, and `stage_batches` "
            "replaces it") for f, n in (("ǁCurriculumLoaderǁload_state_dict", 21), ("ǁCurriculumLoaderǁ__init__", 35)))),
        *((("ǁCurriculumLoaderǁ_batches", n, "without `collate_fn` (batch_size=None) DataLoader applies "
            "`default_convert`, which changes only numpy arrays (recursing into lists and dicts): a list of "
            "LoadedSample dataclasses with PIL images, the decoder's contract, comes out unchanged") for n in (17, 24))),
        *((("ǁCurriculumLoaderǁrealized_mixture", n, "the `or` is taken only when nothing was served: 0 / 1 and "
            "0 / 2 are both 0") for n in (15, 20))),
        *((("ǁCurriculumLoaderǁrealized_mixture", n, "`_served` holds every source of the stage (`_served_before` "
            "keys all its rows' patterns): the `get` default is never read") for n in (35, 37, 38, 39))),
        *((("ǁCurriculumLoaderǁ_batches", n, "the workers draw no random numbers (decoding is deterministic): "
            "another fixed seed of the private generator changes no batch") for n in (10, 12))),
    )},
    "vlm.encode.x_video_as_frames__mutmut_38": "past the last group `next` gives None instead of 0: both are falsy, "
                                              "so the placeholder is kept as written either way",
    "vlm.encode.xǁEncoderǁencode__mutmut_3": "`ChatFormat.segments` reads `add_generation_prompt` as a truth value: "
                                            "None is False",
    "vlm.encode.xǁEncoderǁ_tokens__mutmut_80": "the tokenizer gives no ids for an empty piece: `if piece` only skips "
                                             "the call",
    "vlm.encode.xǁEncoderǁ_tokens__mutmut_33": "an image group holds one image (`check_groups` ran first) and "
                                             "`sample_visuals` reads its first index: [i] resampled to [i, i] is the same",
    "vlm.encode.xǁEncoderǁdummy__mutmut_22": "`image_tokens` reads `multi` as a truth value: None is False",
    "vlm.encode.xǁEncoderǁdummy__mutmut_33": "the black image's pixels hold one image: [:2] of a length-1 axis is [:1]",
    "vlm.encode.x__add_dummy__mutmut_23": "a dummy image is added only to a batch without images: the first "
                                          "sequence's count is 0, so += 1 and = 1 agree",
    "eval.metrics.qa.x_answer_of__mutmut_27": "a row without a marker gets the default 'XXXX' instead of '': "
                                              "differs only for a reply that contains 'XXXX'",
    **{f"eval.metrics.text.x_ptb_tokenize__mutmut_{n}": "`clean` already made every newline a space: the "
       "replace finds none" for n in (25, 26)},
    **{f"eval.metrics.text.x_ptb_tokenize__mutmut_{n}": "Python's codec names ignore case: 'UTF-8' is 'utf-8'"
       for n in (40, 47)},
    **{f"eval.metrics.drivelm.x__norm__mutmut_{n}": "prediction and reference go through the same "
       "normalisation, and lower-cased text holds no 'X': another join or strip set compares alike" for n in (4, 6)},
    **{f"eval.metrics.drivelm.x__match__mutmut_{n}": "`judged_mean`'s not-computed entries always carry a note: "
       "the default is never read" for n in (82, 84, 87)},
    **{f"eval.metrics.drivelm.x_coordinates__mutmut_{n}": "a list of Python floats is a float64 array (an empty "
       "one too) without dtype=float" for n in (14, 16)},
    "eval.metrics.drivelm.x_coordinates__mutmut_18": "numpy reads any negative size in reshape as 'the rest': "
                                                     "(-2, 2) is (-1, 2)",
    **{f"eval.metrics.drivelm.x_frame_qas__mutmut_{n}": "`raw_answer` reads a None marker as no marker"
       for n in (8, 10)},
    **{f"eval.metrics.captions.x_answers__mutmut_{n}": "`extract_answer` reads a None marker as no marker"
       for n in (3, 5)},
    **{f"eval.metrics.captions.x_lingo_judge_scores__mutmut_{n}": "the classifier's logits are (references, 1): "
       "squeezing axis 1, or axis 0 (a no-op or the same single row), leaves the same numbers for max"
       for n in (34, 35)},
    **{f"eval.metrics.drivebench.x_{f}__mutmut_{n}": "Python's codec names ignore case, and encoding=None is "
       "UTF-8 here (PEP 538/540 coerce even the C locale; no other locale is installed)" for f, n in (
           ("official_prompts", 3), ("official_prompts", 6), ("parse_official_predictions", 3),
           ("parse_official_predictions", 6))},
    **{f"eval.metrics.drivebench.x_score_items__mutmut_{n}": "`missing`'s n defaults to 0" for n in (76, 105)},
    **{f"eval.metrics.judged.x__by_super_class__mutmut_{n}": "a row without category_name is miscellaneous "
       "either way: '', 'None' and 'XXXX' hold no super-class word" for n in (12, 14, 21)},
}

STATUS = re.compile(r"^\s+(\S+): (.+)$")
# `mutmut show NAME` for many names in one process (one process per name takes seconds each)
SHOW = """
import json, sys
from mutmut.__main__ import status_by_exit_code
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
out = {}
for name in json.load(sys.stdin):
    m = find_mutant(name)
    status = status_by_exit_code[m.exit_code_by_key[name]]
    out[name] = f"# {name}: {status}\\n" + get_diff_for_mutant(name, path=m.path) + "\\n"
print(json.dumps(out))
"""


def _copy(dest: Path) -> None:
    """The working tree without .git, .venv and build outputs, as a tar round trip (no rsync)."""
    skip = {".git", ".venv", "mutants", "demo-out", "reports", "bench-out", "__pycache__", ".pytest_cache"}
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(dest / "_copy.tar", "w") as tar:
        for p in sorted(ROOT.iterdir()):
            if p.name not in skip and not p.name.endswith(".egg-info"):
                tar.add(p, arcname=p.name, filter=lambda t: None if Path(t.name).name in skip else t)
    with tarfile.open(dest / "_copy.tar") as tar:
        tar.extractall(dest, filter="data")
    (dest / "_copy.tar").unlink()


def _configure(work: Path, module: str, tests: list[str]) -> None:
    """A [tool.mutmut] table for this one module, appended to the copy's pyproject.toml."""
    cfg = {"source_paths": PACKAGES, "only_mutate": [module], "pytest_add_cli_args": PYTEST_ARGS,
           "pytest_add_cli_args_test_selection": tests, "use_git_change_detection": False}
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in cfg.items()]
    with open(work / "pyproject.toml", "a") as f:
        f.write("\n".join(lines) + "\n")


def source_hash(module: str) -> str:
    return hashlib.sha256((ROOT / module).read_bytes()).hexdigest()


def run_module(module: str, scratch: Path, children: int, names: list[str] | None = None) -> dict:
    """Mutate `module` and run its tests against every mutant (or only the mutants `names`)."""
    work = scratch / module.replace("/", "_").removesuffix(".py")
    _copy(work)
    _configure(work, module, MODULES[module])
    # on PYTHONPATH before mutmut creates it: a folder missing at start-up is never searched
    (work / "mutants").mkdir()
    start = datetime.datetime.now()
    run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *(names or [])],
                         cwd=work, env=_env(work), capture_output=True, text=True)
    seconds = round((datetime.datetime.now() - start).total_seconds())
    return collect(work, module, seconds, names, log=f"exit {run.returncode}:\n{(run.stdout + run.stderr)[-2000:]}")


def _env(work: Path) -> dict:
    """One OpenMP thread: mutmut forks a child per mutant from a process whose torch already ran
    parallel kernels, and the child's first parallel kernel (a large resize, a model forward)
    then blocks on a futex forever; the mutant, often a survivor, would count as killed by timeout."""
    return dict(os.environ, PYTHONPATH=str(work / "mutants"), RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", OMP_NUM_THREADS="1")


def collect(work: Path, module: str, seconds: int, names: list[str] | None = None, log: str = "") -> dict:
    """The statuses mutmut recorded in the scratch copy `work`, sorted into killed, survived,
    equivalent and other, with each survivor's diff (or each of `names`')."""
    env = _env(work)
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work, env=env,
                             capture_output=True, text=True)
    statuses = {m.group(1): m.group(2).strip() for m in map(STATUS.match, listing.stdout.splitlines()) if m}
    if names is not None:
        statuses = {k: v for k, v in statuses.items() if k in names}
    if not statuses or all(s == "not checked" for s in statuses.values()):
        raise SystemExit(f"{module}: mutmut produced no results ({log})")
    # a timeout counts as killed, except for a mutant known to be equivalent (a timeout is no
    # proof of a kill: before `_env` set one OpenMP thread, survivors hung in torch after fork)
    killed = sorted(k for k, s in statuses.items() if s == "killed" or (s == "timeout" and k not in EQUIVALENT))
    # "no tests": no test of the module's files even reaches the mutant, which is a survivor too
    lived = ("survived", "no tests", "timeout")
    survived = sorted(k for k, s in statuses.items() if s in lived[:2] and k not in EQUIVALENT)
    equivalent = sorted(k for k, s in statuses.items() if s in lived and k in EQUIVALENT)
    other = sorted(k for k, s in statuses.items() if k not in {*killed, *survived, *equivalent})
    show = subprocess.run([sys.executable, "-c", SHOW], cwd=work, env=env, capture_output=True, text=True,
                          input=json.dumps(survived if names is None else names))
    if show.returncode:
        raise SystemExit(f"{module}: mutmut show failed:\n{show.stderr[-2000:]}")
    mutated = hashlib.sha256((work / module).read_bytes()).hexdigest()   # the copy's source, as mutated
    tests = re.search(r"pytest_add_cli_args_test_selection = (.*)", (work / "pyproject.toml").read_text()).group(1)
    return {"module": module, "source_sha256": mutated, "tests": json.loads(tests), "killed": killed,
            "timeouts": sorted(k for k in killed if statuses[k] == "timeout"),
            "survived": survived, "equivalent": equivalent, "other": {k: statuses[k] for k in other},
            "survivor_diffs": json.loads(show.stdout.splitlines()[-1]), "seconds": seconds}


def rerun_survivors(module: str, last: dict, scratch: Path, children: int) -> dict:
    """The last full run with its survivors (and equivalents) re-tested against today's tests."""
    if last.get("source_sha256", source_hash(module)) != source_hash(module):
        raise SystemExit(f"{module} changed since its last full run: run it in full")
    names = sorted({*last["survived"], *last["equivalent"]})
    if not names:
        return last
    r = run_module(module, scratch, children, names)
    def body(diff: str) -> str:   # the diff without its "# name: status" line
        return diff.split("\n", 1)[1]

    changed = [k for k in last["survived"] if body(r["survivor_diffs"][k]) != body(last["survivor_diffs"][k])]
    if changed:
        raise SystemExit(f"{module}: {len(changed)} survivors are no longer the recorded mutants "
                         f"(e.g. {changed[0]}): the source changed, run it in full")
    killed = sorted({*last["killed"], *r["killed"]} - set(r["equivalent"]))
    timeouts = sorted({*last.get("timeouts", []), *r["timeouts"]} & set(killed))
    diffs = {k: r["survivor_diffs"][k] for k in r["survived"]}
    other = {**{k: v for k, v in last["other"].items() if k not in names}, **r["other"]}   # e.g. never run
    return {**r, "killed": killed, "timeouts": timeouts, "other": other, "survivor_diffs": diffs, "seconds": last["seconds"],
            "survivor_rerun_seconds": r["seconds"]}


def kill_rate(r: dict) -> float:
    tested = len(r["killed"]) + len(r["survived"])
    return len(r["killed"]) / tested if tested else 1.0


def write_report(results: dict[str, dict], command: str) -> None:
    """Replace the text between the report markers of docs/testing.md."""
    today = datetime.date.today().isoformat()
    rows = ["| module | tests | mutants | killed | survived | equivalent | not run | kill rate | time | last run |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for module in MODULES:
        r = results.get(module)
        if r is None:
            rows.append(f"| `{module}` | {', '.join(MODULES[module])} | not yet run | | | | | | | |")
            continue
        n = len(r["killed"]) + len(r["survived"]) + len(r["equivalent"]) + len(r["other"])
        t = len(r.get("timeouts", [])) + r.get("timeouts_not_named", 0)
        killed = f"{len(r['killed'])}" + (f" ({t} by timeout)" if t else "")
        rows.append(f"| `{module}` | {', '.join(r['tests'])} | {n} | {killed} | {len(r['survived'])} | "
                    f"{len(r['equivalent'])} | {len(r['other'])} | {kill_rate(r):.0%} | {r['seconds']} s | "
                    f"{r.get('last_run', 'earlier, full')} |")
    done = [r for r in results.values()]
    k = sum(len(r["killed"]) for r in done)
    s = sum(len(r["survived"]) for r in done)
    lines = [f"Last run: {today}, `{command}` (mutmut {_mutmut_version()}, {len(done)} of {len(MODULES)} modules).",
             "", *rows, "",
             f"Over the modules run: {k} killed of {k + s} non-equivalent mutants ({k / max(k + s, 1):.1%})"
             + (f"; {o} mutants of partial runs not tested." if (o := sum(len(r["other"]) for r in done)) else "."),
             ""]
    equivalents = [(name, EQUIVALENT[name]) for r in done for name in r["equivalent"]]
    if equivalents:
        lines += ["Equivalent mutants (survive by construction):", ""]
        lines += [f"- `{name}`: {why}" for name, why in equivalents] + [""]
    survivors = [name for r in done for name in r["survived"]]
    if survivors:
        lines += ["Surviving mutants (each needs a test or a reason):", ""]
        lines += [f"- `{name}`" for name in survivors] + [""]
    text = REPORT.read_text()
    begin, end = "<!-- mutation report: begin -->", "<!-- mutation report: end -->"
    head, rest = text.split(begin, 1)
    REPORT.write_text(head + begin + "\n" + "\n".join(lines) + end + rest.split(end, 1)[1])


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to run (default: all of MODULES)")
    parser.add_argument("--scratch", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "dataengine-mutation")
    parser.add_argument("--children", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--survivors", action="store_true", help="re-test only the last run's survivors")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"not a mutation module: {', '.join(unknown)} (see MODULES in tests/mutation.py)", file=sys.stderr)
        return 2
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    modules = args.modules or [m for m in MODULES if m in results or not args.survivors]
    never = [m for m in modules if args.survivors and m not in results]
    if never:
        print(f"no earlier run to take survivors from: {', '.join(never)}", file=sys.stderr)
        return 2
    for module in modules:
        print(f"mutation: {module} against {', '.join(MODULES[module])}", flush=True)
        r = (rerun_survivors(module, results[module], args.scratch, args.children) if args.survivors
             else run_module(module, args.scratch, args.children))
        print(f"  {len(r['killed'])} killed, {len(r['survived'])} survived, {len(r['equivalent'])} equivalent "
              f"({kill_rate(r):.0%}) in {r['seconds']} s", flush=True)
        r["last_run"] = f"{datetime.date.today().isoformat()}, {'survivors re-tested' if args.survivors else 'full'}"
        results = store_result(module, r)
    command = "make mutation" + (" MUTATION_ARGS=--survivors" if args.survivors else "")
    with _locked():
        write_report(results, command + (f" MODULES='{' '.join(args.modules)}'" if args.modules else ""))
    return 0


@contextlib.contextmanager
def _locked():
    """Runs of different modules may go at once (one each): the results file and the report are
    read, merged and written under one lock, so one run never drops another's module."""
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def store_result(module: str, r: dict) -> dict:
    """Merge one module's result into the results file as it is now (not as it was at the start)."""
    with _locked():
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results[module] = r
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return results


if __name__ == "__main__":
    sys.exit(main())
