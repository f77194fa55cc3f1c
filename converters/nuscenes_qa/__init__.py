"""nuScenes-QA: closed-vocabulary questions on nuScenes key frames."""
from converters.nuscenes_qa import converter  # noqa: F401  (importing it registers nuscenes_qa)
