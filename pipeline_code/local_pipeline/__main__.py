"""`python -m pipeline_code.local_pipeline`: see `cli`."""

import sys

from pipeline_code.local_pipeline.cli import main

sys.exit(main())
