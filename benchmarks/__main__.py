"""`python -m benchmarks [--scenario NAME] [--quick] ...`, from the checkout's root: see benchmarks/README.md."""

import sys

from benchmarks.bench import main

sys.exit(main())
