"""`python -m reports [--tracking-uri URI] [--study NAME] [--out DIR]`: write a study's report folder."""

import sys

from reports._cli import main

sys.exit(main())
