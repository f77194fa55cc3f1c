"""OmniDrive-nuScenes: captions, QA, counterfactuals and planning on nuScenes key frames."""
from converters.omnidrive import converter  # noqa: F401  (importing it registers omnidrive)
