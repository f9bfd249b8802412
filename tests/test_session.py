"""Session factory: YAML loading and the plain-python fallback."""

import pytest

from pipelines.session import LOCAL_SPARK_CONF, load_spark_yaml, under_spark_submit
from tests.conftest import JAVA_OPTIONS


def test_local_yaml_has_small_machine_defaults():
    settings = load_spark_yaml(LOCAL_SPARK_CONF)
    assert settings["master"] == "local[*]"
    assert settings["conf"]["spark.sql.execution.arrow.pyspark.enabled"] is True
    assert settings["conf"]["spark.sql.shuffle.partitions"] <= 16


def test_unknown_keys_and_missing_file(tmp_path):
    bad = tmp_path / "spark.yaml"
    bad.write_text("mastr: local[2]\n")
    with pytest.raises(ValueError, match=r"unknown keys \['mastr'\]; valid keys: \['conf', 'master', 'remote'\]"):
        load_spark_yaml(bad)
    with pytest.raises(FileNotFoundError, match="Spark configuration file not found"):
        load_spark_yaml(tmp_path / "none.yaml")


def test_fixture_session_follows_test_yaml(spark):
    conf = spark.sparkContext.getConf()
    assert not under_spark_submit()
    assert spark.sparkContext.master == "local[2]"
    assert conf.get("spark.sql.shuffle.partitions") == "4"
    assert conf.get("spark.ui.enabled") == "false"
    assert conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    # the driver JVM was started with the tier's JIT and GC options (the suite's CPU budget relies on them)
    jvm_args = list(
        spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()
    )
    assert set(JAVA_OPTIONS.split()) <= set(jvm_args), jvm_args
    assert "-XX:+UseSerialGC" in jvm_args
