"""Run a pipeline definition in this process's SparkSession, e.g. under spark-submit:

    spark-submit --master spark://host:7077 --py-files dist/spark_ml_pipelines-0.1.0.zip \\
        jobs/run_pipeline.py clicks_demo --run-date 2026-11-20

Takes the arguments of ``spark-ml-pipelines run`` (``--mode session`` unless told otherwise). The job
defaults and shipped definitions travel inside the package (the zip), so the driver needs no checkout.
"""

import sys

from pipelines.orchestration.command import main

if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(["run", *args] if "--mode" in args else ["run", *args, "--mode", "session"]))
