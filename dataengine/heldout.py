"""The datasets held out of training: the one declaration the leakage audit, its command line
and the evaluation's `unseen` group all read (reference eval.md section 6: BDD-X and DRAMA
come from other sources; nuScenes-QA and Talk2Car are nuScenes-based held-out sets; DriveBench,
the third unseen benchmark of RoboTron-Drive's later version, asks about DriveLM key frames)."""
from __future__ import annotations

UNSEEN_DATASETS = ("bddx", "bddx_processed", "drama", "drivebench", "nuscenes_qa", "talk2car")
