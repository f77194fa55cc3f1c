"""LLaVA-NeXT's training format (JSON + image folder, or an HF parquet dataset): general-domain data in."""
from converters.llava import converter  # noqa: F401  (importing it registers llava)
