"""NuInstruct: QA on multi-view nuScenes video clips."""
from converters.nuinstruct import converter  # noqa: F401  (importing it registers nuinstruct)
