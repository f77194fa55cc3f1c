"""CODA-LM: corner-case perception, region and driving-suggestion text on single images."""
from converters.codalm import converter  # noqa: F401  (importing it registers codalm)
