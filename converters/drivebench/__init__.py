"""DriveBench: DriveLM-nuScenes questions, clean, under image corruptions and text only."""
from converters.drivebench import converter  # noqa: F401  (importing it registers drivebench)
