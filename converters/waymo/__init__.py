"""Waymo Open Dataset perception frames (v1 TFRecords or v2 parquet) as planning samples."""
from converters.waymo import converter  # noqa: F401  (importing it registers waymo)
