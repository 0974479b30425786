"""`python -m study` is the `study` command."""

import sys

from study.cli import main

sys.exit(main())
