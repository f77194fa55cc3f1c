"""DRAMA: risk captions and the important object's box on single frames."""
from converters.drama import converter  # noqa: F401  (importing it registers drama)
