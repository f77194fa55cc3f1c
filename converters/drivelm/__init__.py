"""DriveLM-nuScenes: graph VQA on 6-camera nuScenes key frames."""
from converters.drivelm import converter  # noqa: F401  (importing it registers drivelm)
