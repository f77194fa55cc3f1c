"""BDD-X: the raw release (`bddx`) and the processed test set later works use (`bddx_processed`)."""
from converters.bddx import converter, processed  # noqa: F401  (importing them registers bddx, bddx_processed)
