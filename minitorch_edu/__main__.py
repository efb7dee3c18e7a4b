"""`python -m minitorch_edu ...` runs the `minitorch-edu` command."""

import sys

from minitorch_edu.cli import main

sys.exit(main())
