"""Run a pipeline definition in this process's SparkSession, e.g. under spark-submit:

    spark-submit --master spark://host:7077 --py-files dist/spark_ml_pipelines-0.1.0.zip \\
        jobs/run_pipeline.py conf/pipelines/clicks_demo.yaml --run-date 2026-11-20

Takes the arguments of ``python -m pipelines run`` (``--mode session`` unless told otherwise).
"""
import sys
from pathlib import Path

# The runner finds its jobs and their defaults in jobs/ and conf/ beside the package, which the --py-files zip
# (first on the driver's path under spark-submit) does not hold: the driver imports the package from the
# checkout this file is in; executors take it from the zip.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.orchestration.command import main  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(["run", *args] if "--mode" in args else ["run", *args, "--mode", "session"]))
