"""Talk2Car: commands grounded to one object box in the nuScenes front camera."""
from converters.talk2car import converter  # noqa: F401  (importing it registers talk2car)
