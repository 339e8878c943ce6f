"""`python -m crossrec_core.cli`."""
import sys

from . import main

sys.exit(main())
