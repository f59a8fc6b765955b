"""`python -m gato` runs the command line."""

import sys

from gato.cli import main

sys.exit(main())
