"""`python -m digits.pipeline COMMAND [NAME=value ...]`: what every make target of the pipeline runs."""

import sys

from digits.pipeline.main import main

sys.exit(main())
