"""``python -m deploysim.cli``: the same as the ``deploysim`` command."""

import sys

from deploysim.cli import main

sys.exit(main())
