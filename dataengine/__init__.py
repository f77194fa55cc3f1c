"""Driving data engine: many raw driving datasets in, one standardized sharded format out."""

SCHEMA_VERSION = "sample/1"
__version__ = "0.1.0"
