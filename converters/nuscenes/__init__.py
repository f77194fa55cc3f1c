"""nuScenes planning samples, and the table index, media and units its derived datasets share."""
from converters.nuscenes import converter  # noqa: F401  (importing it registers nuscenes)
