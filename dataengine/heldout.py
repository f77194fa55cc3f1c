"""The datasets held out of training: the one declaration the leakage audit, its command line
and the evaluation's `unseen` group all read (reference eval.md section 6: BDD-X and DRAMA
come from other sources; nuScenes-QA and Talk2Car are nuScenes-based held-out sets)."""
from __future__ import annotations

UNSEEN_DATASETS = ("bddx", "bddx_processed", "drama", "nuscenes_qa", "talk2car")
