"""Ingest tables (Parquet, CSV, JSON lines) and text corpora into typed DataFrames.

A corpus is one document per line (``text``), per JSON line or Parquet row, or per file (``files``, the way
corpora come in class folders); its bytes are decoded in the declared encoding (a Python codec) and
byte-identical documents can be dropped.

Schemas are declared in configuration as Spark DDL (``"label INT, price DOUBLE, city STRING"``).
CSV and JSON records that do not fit the schema (wrong field count, unparseable value, broken JSON)
are split off with their raw text for quarantine instead of being silently nulled. Problems that no
quarantine can fix (missing path, empty input, missing column, wrong Parquet type) raise
``IngestError`` naming the path or column and what was expected.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlparse

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.errors import UserError
from pipelines.fs import file_system, qualify, require_input
from udfs.text import decode_udf

if TYPE_CHECKING:
    from pipelines.job_runtime import JobContext

CORRUPT_COL = "_corrupt_record"
TABLE_FORMATS = ("parquet", "csv", "json")
CORPUS_FORMATS = ("text", "json", "parquet", "files")
CORPUS_READING = ("encoding", "label_col", "label_pattern", "dedupe")  # optional keys of a corpus source
LABEL = "label"
# Python codec name -> the name Spark's JSON reader takes; it decodes no other charset.
JSON_CHARSETS = {
    "utf-8": "utf-8",
    "iso8859-1": "iso-8859-1",
    "ascii": "us-ascii",
    "utf-16": "utf-16",
    "utf-16-be": "utf-16be",
    "utf-16-le": "utf-16le",
    "utf-32": "utf-32",
}


class IngestError(UserError):
    """Input that cannot be ingested as declared. The message names the path or column."""


@dataclass
class Ingested:
    """Typed good records, the malformed ones (raw text and source file), and their counts."""

    data: DataFrame
    malformed: DataFrame | None
    rows_in: int
    rows_malformed: int
    duplicates: int = 0  # byte-identical documents dropped (corpora read with ``dedupe``)

    @property
    def rows_good(self) -> int:
        return self.rows_in - self.rows_malformed

    @property
    def malformed_fraction(self) -> float:
        return self.rows_malformed / self.rows_in if self.rows_in else 0.0


def parse_schema(ddl: str, where: str = "schema") -> T.StructType:
    """Parse a DDL schema string, with an error that says where it came from."""
    try:
        return T.StructType.fromDDL(ddl)
    except Exception as exc:  # Spark raises a parse exception with a multi-line message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IngestError(
            f"{where}: cannot parse schema {ddl!r} as Spark DDL (e.g. 'id BIGINT, text STRING'): {first}"
        ) from None


def _require_path(spark: SparkSession, path: str) -> str:
    return require_input(file_system(spark), path)


def _csv_header(spark: SparkSession, path: str, options: Mapping[str, str]) -> list[str]:
    first = spark.read.text(path).limit(1).collect()
    if not first:
        raise IngestError(f"{path}: empty input, expected a CSV header line and records")
    sep = options.get("sep", options.get("delimiter", ","))
    return next(csv.reader([first[0][0]], delimiter=sep))


def _read_permissive(
    spark: SparkSession,
    path: str,
    fmt: str,
    declared: T.StructType,
    options: Mapping[str, str],
    decode: str | None = None,
) -> DataFrame:
    """CSV/JSON read that keeps malformed records in ``_corrupt_record`` (cached: read once). ``decode``: JSON lines
    in a codec Spark's JSON reader does not take (GBK, Big5, ...), read as lines, decoded by the UDF and parsed by
    ``from_json`` (those codecs never put a newline byte inside a character)."""
    if decode:
        schema = T.StructType(declared.fields + [T.StructField(CORRUPT_COL, T.StringType())])
        lines = spark.read.options(**options).text(path).filter(F.length(F.trim("value")) > 0)
        text = decode_udf(decode)(F.col("value").cast("binary"))
        parsed = F.from_json(text, schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COL})
        df = lines.select(parsed.alias("_r"), F.input_file_name().alias("_source_file")).select("_r.*", "_source_file")
        return df.persist(StorageLevel.MEMORY_AND_DISK)
    read_schema = declared
    reader = spark.read.options(**options).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COL)
    if fmt == "csv":
        header = _csv_header(spark, path, options)
        missing = [f.name for f in declared if f.name not in header]
        if missing:
            raise IngestError(
                f"{path}: missing column(s) {missing} in the CSV header {header}; "
                f"declared schema: {declared.simpleString()}"
            )
        by_name = {f.name: f for f in declared}
        # Read in header order so that values are matched by name, not by position.
        read_schema = T.StructType([by_name.get(name, T.StructField(name, T.StringType())) for name in header])
        reader = reader.option("header", "true").option("enforceSchema", "false")
    full_schema = T.StructType(read_schema.fields + [T.StructField(CORRUPT_COL, T.StringType())])
    df = reader.schema(full_schema).format(fmt).load(path).withColumn("_source_file", F.input_file_name())
    return df.persist(StorageLevel.MEMORY_AND_DISK)


def _check_columns(df: DataFrame, declared: T.StructType, path: str) -> None:
    actual = {f.name: f.dataType for f in df.schema}
    for field in declared:
        if field.name not in actual:
            raise IngestError(
                f"{path}: missing column '{field.name}' (expected {field.dataType.simpleString()}); "
                f"found columns {sorted(actual)}"
            )
        if actual[field.name] != field.dataType:
            raise IngestError(
                f"{path}: column '{field.name}' has type {actual[field.name].simpleString()}, "
                f"expected {field.dataType.simpleString()}"
            )


def read_table(
    spark: SparkSession,
    path: str,
    fmt: str,
    schema: str,
    options: Mapping[str, Any] | None = None,
    decode: str | None = None,
) -> Ingested:
    """Read a table in ``fmt`` with the declared DDL ``schema``; malformed CSV/JSON records split off. ``decode``:
    JSON lines in that Python codec, for codecs Spark's JSON reader does not take (see ``_read_permissive``)."""
    if fmt not in TABLE_FORMATS:
        raise IngestError(f"{path}: unknown table format '{fmt}', expected one of {list(TABLE_FORMATS)}")
    full = _require_path(spark, path)
    declared = parse_schema(schema, f"{full}: schema")
    opts = {k: str(v) for k, v in (options or {}).items()}
    if fmt == "parquet":
        df = spark.read.options(**opts).parquet(full)
        _check_columns(df, declared, full)
        data = df.select(*[f.name for f in declared])
        rows = data.count()
        if rows == 0:
            raise IngestError(f"{full}: empty input, expected at least one record")
        return Ingested(data, None, rows, 0)
    raw = _read_permissive(spark, full, fmt, declared, opts, decode)
    counts = raw.agg(F.count(F.lit(1)).alias("n"), F.count(CORRUPT_COL).alias("bad")).first()
    if counts["n"] == 0:
        raw.unpersist()
        raise IngestError(f"{full}: empty input, expected at least one record")
    good = raw.filter(F.col(CORRUPT_COL).isNull()).select(*[f.name for f in declared])
    bad = raw.filter(F.col(CORRUPT_COL).isNotNull()).select(
        F.col(CORRUPT_COL).alias("record"), F.col("_source_file").alias("source_file")
    )
    return Ingested(good, bad, counts["n"], counts["bad"])


def check_encoding(encoding: str, key: str = "input.encoding") -> str:
    """A Python codec name, or an error naming ``key``."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise IngestError(
            f"{key}: unknown encoding {encoding!r}; expected a Python codec name such as utf-8, "
            f"gb18030, gbk, big5 or latin-1"
        ) from None


def read_corpus(
    spark: SparkSession,
    path: str,
    fmt: str,
    id_col: str = "id",
    text_col: str = "text",
    id_type: str = "string",
    options: Mapping[str, Any] | None = None,
    *,
    encoding: str = "utf-8",
    label_col: str = "",
    label_pattern: str = "",
    dedupe: bool = False,
) -> Ingested:
    """Read documents as ``(doc_id, text)``, plus ``label`` for ``files`` or when ``label_col`` is named.

    ``text``: one document per line, ``doc_id`` = line number (0-based, files in path order);
    ``json``: JSON lines with ``id_col``/``text_col`` (and ``label_col``) fields; ``parquet``: those columns (the
    text a string or binary);
    ``files``: one file per document under ``path`` (recursive; Spark's ``binaryFile`` source, so
    ``options.pathGlobFilter`` picks files), ``doc_id`` = the path relative to ``path``, ``label`` = the first group
    of ``label_pattern`` found in that relative path, or the file's folder name.
    Text other than JSON's is decoded from its bytes in ``encoding``: UTF-8 by Spark (``clean_corpus`` repairs and
    counts invalid sequences), any other codec in a pandas UDF that replaces invalid sequences with U+FFFD (counted
    the same way); JSON by Spark's reader in the ``JSON_CHARSETS``, in any other codec as lines decoded by the UDF
    (invalid sequences replaced, as for text) and parsed by ``from_json``. ``dedupe`` keeps one
    document (the smallest id) of each set of byte-identical texts.
    """
    if fmt not in CORPUS_FORMATS:
        raise IngestError(f"{path}: unknown corpus format '{fmt}', expected one of {list(CORPUS_FORMATS)}")
    codec = check_encoding(encoding)
    opts = {k: str(v) for k, v in (options or {}).items()}
    if fmt in ("text", "files"):
        full = _require_path(spark, path)
        data = _read_files(spark, full, opts, label_pattern) if fmt == "files" else _read_lines(spark, full, opts)
        ingested = Ingested(data, None, data.count(), 0)
        if ingested.rows_in == 0:
            raise IngestError(f"{full}: empty input, expected one document per {'file' if fmt == 'files' else 'line'}")
    else:
        decode = codec if fmt == "json" and codec not in JSON_CHARSETS else None
        if fmt == "json" and codec != "utf-8" and not decode:
            opts = {"encoding": JSON_CHARSETS[codec], "lineSep": "\n", **opts}
        label = f", `{label_col}` STRING" if label_col else ""
        text_type = "STRING"
        if fmt == "parquet":  # raw bytes, to decode in ``encoding``
            found = spark.read.options(**opts).parquet(_require_path(spark, path)).schema
            if text_col in found.fieldNames() and isinstance(found[text_col].dataType, T.BinaryType):
                text_type = "BINARY"
        ingested = read_table(spark, path, fmt, f"`{id_col}` {id_type}, `{text_col}` {text_type}{label}", opts, decode)
        columns = [F.col(id_col).alias("doc_id"), F.col(text_col).alias("text")]
        ingested.data = ingested.data.select(*columns, *([F.col(label_col).alias(LABEL)] if label_col else []))
    if dedupe:
        ingested.data, ingested.duplicates = _drop_duplicates(ingested.data, ingested.rows_good)
    if fmt != "json" and codec != "utf-8":
        ingested.data = ingested.data.withColumn("text", decode_udf(codec)(F.col("text").cast("binary")))
    return ingested


def read_corpus_source(spark: SparkSession, source: Mapping[str, Any]) -> Ingested:
    """``read_corpus`` of a job's corpus source section: its path, format, columns and options, and the
    ``CORPUS_READING`` keywords it sets (its conf states the defaults)."""
    reading = {key: source[key] for key in CORPUS_READING if key in source}
    return read_corpus(
        spark,
        source["path"],
        source["format"],
        source["id_col"],
        source["text_col"],
        source["id_type"],
        source["options"],
        **reading,
    )


def _read_lines(spark: SparkSession, full: str, options: Mapping[str, str]) -> DataFrame:
    """Lines as raw text (Spark keeps a line's bytes as they are), numbered in path order."""
    lines = spark.read.options(**options).text(full)
    return _numbered(lines.select(F.col("value").alias("text")), "doc_id").select("doc_id", "text")


def _read_files(spark: SparkSession, full: str, options: Mapping[str, str], label_pattern: str) -> DataFrame:
    """One row per file under ``full``: relative path as ``doc_id``, raw bytes as ``text``, ``label``."""
    try:
        groups = re.compile(label_pattern).groups if label_pattern else 0
    except re.error as exc:
        raise IngestError(f"input.label_pattern: {label_pattern!r} is not a regular expression ({exc})") from None
    files = spark.read.format("binaryFile").option("recursiveFileLookup", "true").options(**options).load(full)
    root = urlparse(full).path.rstrip("/")
    relative = F.regexp_extract("path", rf"^(?:[a-zA-Z][\w+.-]*:)?(?://[^/]*)?\Q{root}\E/(.+)$", 1)
    doc_id = F.when(relative == "", F.element_at(F.split("path", "/"), -1)).otherwise(relative)
    parts = F.split(doc_id, "/")
    label = (
        F.regexp_extract(doc_id, label_pattern, 1 if groups else 0)
        if label_pattern
        else F.when(F.size(parts) > 1, F.element_at(parts, -2))
    )
    return files.select(doc_id.alias("doc_id"), F.col("content").alias("text"), F.nullif(label, F.lit("")).alias(LABEL))


def _drop_duplicates(docs: DataFrame, rows: int) -> tuple[DataFrame, int]:
    """One document (the smallest ``doc_id``) per distinct byte string of ``text``, and how many were dropped.
    Null texts are never duplicates of each other."""
    key = F.coalesce(F.sha2(F.col("text").cast("binary"), 256), F.concat(F.lit("id:"), F.col("doc_id").cast("string")))
    kept = (
        docs.groupBy(key.alias("_key"))
        .agg(F.min_by(F.struct(*docs.columns), F.col("doc_id")).alias("_doc"))
        .select("_doc.*")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    return kept, rows - kept.count()


def _numbered(df: DataFrame, name: str) -> DataFrame:
    """``df`` with column ``name`` = 0, 1, ... in partition order, as ``RDD.zipWithIndex`` numbers rows, from
    DataFrame calls only (Spark Connect has no RDDs): one small job counts the rows of each partition, and
    a row's number is the rows of earlier partitions plus its position in its own (the low 33 bits of
    ``monotonically_increasing_id``). The tagged rows are cached by the counting job, so the numbers hold even if
    a later plan of ``df`` would split it otherwise (another ``spark.sql.files.maxPartitionBytes``, say)."""
    tagged = df.select("*", F.spark_partition_id().alias("_part"), F.monotonically_increasing_id().alias("_row"))
    tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK)
    counts = sorted(tuple(r) for r in tagged.groupBy("_part").count().collect())
    starts, total = [], 0
    for part, n in counts:
        starts.append((part, total))
        total += n
    first = F.create_map(*[F.lit(x) for pair in starts for x in pair]) if starts else F.create_map()
    position = F.col("_row") - F.shiftleft(F.col("_part").cast("long"), 33)
    return tagged.select(*df.columns, (first[F.col("_part")] + position).alias(name))


def ingest_dataset(
    ctx: "JobContext",
    key: str,
    source: Mapping[str, Any],
    output_path: str,
    quarantine_path: str,
    max_malformed_fraction: float,
) -> DataFrame:
    """Read one source, commit its malformed records to quarantine, enforce the threshold, stage the rest.

    The quarantine is committed before the threshold check so that a failing run still leaves the
    bad records where the error message says they are.
    """
    if source["kind"] == "corpus":
        ingested = read_corpus_source(ctx.spark, source)
    elif source["kind"] == "table":
        if not source["schema"]:
            raise IngestError(
                f"{source['path']}: no schema declared; set input.schema to Spark DDL, e.g. 'label INT, price DOUBLE'"
            )
        ingested = read_table(ctx.spark, source["path"], source["format"], source["schema"], source["options"])
    else:
        raise IngestError(f"{source['path']}: unknown input kind '{source['kind']}', expected 'table' or 'corpus'")
    committed_quarantine = None
    if ingested.rows_malformed:
        committed_quarantine = ctx.commit_now(f"{key}_quarantine", ingested.malformed, quarantine_path)
    ctx.metrics.setdefault("ingest", {})[key] = {
        "source": qualify(source["path"]),
        "rows_in": ingested.rows_in,
        "rows_good": ingested.rows_good,
        "rows_quarantined": ingested.rows_malformed,
        "malformed_fraction": round(ingested.malformed_fraction, 6),
        "quarantine_path": committed_quarantine,
        **({"encoding": source["encoding"], "duplicates": ingested.duplicates} if source["kind"] == "corpus" else {}),
    }
    ctx.log(
        f"{key}: {ingested.rows_in} records, {ingested.rows_malformed} malformed, "
        f"{ingested.duplicates} byte-identical duplicates dropped"
    )
    if ingested.malformed_fraction > max_malformed_fraction:
        raise IngestError(
            f"{qualify(source['path'])}: {ingested.rows_malformed} of {ingested.rows_in} records "
            f"({ingested.malformed_fraction:.2%}) are malformed, above max_malformed_fraction "
            f"{max_malformed_fraction:.2%}; they were quarantined to {committed_quarantine}"
        )
    out = ctx.stage(key, ingested.data, output_path)
    if out.rows != ingested.rows_good - ingested.duplicates:
        raise IngestError(f"{output_path}: wrote {out.rows} rows, expected {ingested.rows_good - ingested.duplicates}")
    return ingested.data


def ingest_job(ctx: "JobContext") -> None:
    """``jobs/ingest.py``: one input (table or corpus) to Parquet, with quarantine."""
    cfg = ctx.config
    out = cfg["output"]["path"]
    ingest_dataset(
        ctx,
        "output",
        cfg["input"],
        out,
        cfg["output"]["quarantine_path"] or f"{out}_quarantine",
        cfg["max_malformed_fraction"],
    )


def read_input(spark: SparkSession, source: Mapping[str, Any]) -> DataFrame:
    """A job's input table from ``{path, format, schema, options}``: Parquet may omit the schema.

    Used by jobs that consume tables other jobs wrote; malformed CSV/JSON records are an error here
    (quarantine is the ingest job's work).
    """
    if source["format"] == "parquet" and not source["schema"]:
        return spark.read.options(**{k: str(v) for k, v in source["options"].items()}).parquet(
            _require_path(spark, source["path"])
        )
    if not source["schema"]:
        raise IngestError(f"{source['path']}: input.schema is required for format '{source['format']}'")
    ingested = read_table(spark, source["path"], source["format"], source["schema"], source["options"])
    if ingested.rows_malformed:
        raise IngestError(
            f"{qualify(source['path'])}: {ingested.rows_malformed} of {ingested.rows_in} records are "
            f"malformed; run jobs/ingest.py first to quarantine them"
        )
    return ingested.data
