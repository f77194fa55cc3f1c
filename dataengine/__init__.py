"""Driving data engine: many raw driving datasets in, one standardized sharded format out."""

SCHEMA_VERSION = "sample/3"  # media and shared contexts by sha1 in <root>/media/ (docs/format.md)
__version__ = "0.1.0"
