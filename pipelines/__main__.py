"""``python -m pipelines run|airflow|cron|report ...``: see ``pipelines/orchestration/command.py``."""
import sys

from pipelines.orchestration.command import main

if __name__ == "__main__":
    sys.exit(main())
