"""MAPLM: closed-choice map and lane questions on a front photo and a BEV image."""
from converters.maplm import converter  # noqa: F401  (importing it registers maplm)
