"""CrossRec core: store, encoder, signals, scorer, explanations, evaluation, runs and export.

The core never imports Streamlit; the dashboard, the CLI and the tests all call these modules.
"""
import os as _os

# Must be set before numpy loads OpenBLAS: one thread per BLAS call is faster for implicit and quiet.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .config import Settings  # noqa: E402
from .errors import CrossRecError  # noqa: E402

__all__ = ["Settings", "CrossRecError"]
__version__ = "0.1.0"
