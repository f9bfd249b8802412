"""Bad text input: null or empty documents, byte sequences invalid in the declared encoding, duplicate ids.

Empty and null documents are kept (they get an empty vector) and counted; invalid UTF-8 byte
sequences are replaced with U+FFFD and counted (documents that arrive with U+FFFD already in them
count too, since readers and the decoding UDF of other encodings replace bad bytes while decoding); more than
``max_invalid_fraction`` of such documents means the declared encoding is wrong, and stops the job (``check_invalid``);
duplicate or null ids stop the job with an error that names an example, because every later join (keywords,
neighbours) is keyed on the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.ingest import IngestError
from pipelines.records import Record

# Readers that decode bytes themselves (text files, JSON) have already replaced bad sequences with it.
REPLACEMENT = "\ufffd"


class TextInputError(IngestError):
    """A corpus the text jobs cannot use as it is (the jobs print it as one line)."""


@dataclass(frozen=True)
class CorpusCounts(Record):
    """What ``clean_corpus`` found."""

    documents: int
    empty_documents: int
    invalid_documents: int  # held invalid byte sequences (replaced by U+FFFD)
    invalid_example: Any  # the smallest id among them, None when there are none


def clean_corpus(docs: DataFrame, id_col: str = "doc_id", text_col: str = "text") -> tuple[DataFrame, CorpusCounts]:
    """Check ids and repair text of ``(id_col, text_col)``: text becomes valid UTF-8, null becomes ''.

    ``text_col`` may be a string or binary column (raw bytes are decoded as UTF-8). Two passes over
    the input: one aggregate for the counts and one group-by on the id for duplicates.
    """
    raw = F.col(text_col).cast("string")
    invalid = ~F.is_valid_utf8(raw) | F.contains(raw, F.lit(REPLACEMENT))
    counts = docs.agg(
        F.count(F.lit(1)).alias("documents"),
        F.count_if(raw.isNull() | (F.trim(raw) == "")).alias("empty"),
        F.count_if(invalid).alias("invalid"),
        F.min(F.when(invalid, F.col(id_col))).alias("invalid_example"),
        F.count_if(F.col(id_col).isNull()).alias("null_ids"),
    ).first()
    if counts["null_ids"]:
        raise TextInputError(
            f"{counts['null_ids']} document(s) have a null id in column '{id_col}'; every document needs a unique id"
        )
    duplicate = docs.groupBy(id_col).count().filter(F.col("count") > 1).limit(1).collect()
    if duplicate:
        example, n = duplicate[0][id_col], duplicate[0]["count"]
        raise TextInputError(
            f"duplicate document id {example!r} in column '{id_col}' ({n} documents share it); "
            f"document ids must be unique"
        )
    cleaned = docs.withColumn(text_col, F.coalesce(F.make_valid_utf8(raw), F.lit("")))
    return cleaned, CorpusCounts(counts["documents"], counts["empty"], counts["invalid"], counts["invalid_example"])


def check_invalid(
    counts: CorpusCounts, where: str, example: str, section: str, encoding: str, max_fraction: float
) -> None:
    """Stop when more than ``max_fraction`` of the documents held invalid bytes: one line with the count, the
    example (``example``, a path or a document of ``where``) and the ``<section>.encoding`` option to change."""
    if counts.documents and counts.invalid_documents / counts.documents > max_fraction:
        raise TextInputError(
            f"{where}: {counts.invalid_documents} of {counts.documents} documents "
            f"({counts.invalid_documents / counts.documents:.2%}) hold byte sequences invalid in "
            f"{section}.encoding {encoding!r} (e.g. {example}), above {section}.max_invalid_fraction "
            f"{max_fraction:.2%}; set {section}.encoding to the corpus's encoding (e.g. gb18030, big5, latin-1)"
        )
