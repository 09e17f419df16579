"""``python -m trainer``: run the JobSpec named by $LOUPE_JOB_SPEC (or --spec)."""
import sys

from trainer.job import main

sys.exit(main())
