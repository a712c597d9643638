"""`python -m videomae ...` (so that `torchrun -m videomae pretrain ...` works)."""

import sys

from videomae.cli import main

sys.exit(main())
