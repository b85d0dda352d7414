"""``python -m goalcover_hf.cli``: the ``goalcover`` command."""

import sys

from . import main

sys.exit(main())
