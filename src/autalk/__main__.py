"""``python -m autalk ...`` (what ``torchrun ... -m autalk train ...`` runs): the ``autalk`` command line."""

import sys

from autalk.cli import main

sys.exit(main())
