"""LingoQA: video question answering on 5-frame front-camera clips."""
from converters.lingoqa import converter  # noqa: F401  (importing it registers lingoqa)
