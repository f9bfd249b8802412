"""``python -m pipelines run|job|airflow|cron|report ...`` (the console command ``spark-ml-pipelines``): see
``pipelines/orchestration/command.py``."""

import sys

from pipelines.orchestration.command import main

if __name__ == "__main__":
    sys.exit(main())
