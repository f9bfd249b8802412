"""The tokeniser stage: text -> array of terms, for English-like and Chinese text.

Both segmenters first apply Unicode normalisation and lower-casing in the JVM: Spark SQL has no
normalisation function, but ICU4J ships with Spark (4.0+, for collations) and its static
``Normalizer.compose/decompose(text, compat)`` can be called with ``reflect``, so the text never
crosses to Python for it (a pandas UDF doing so cost a third of the tokeniser's time). ICU follows a
newer Unicode version than Python's ``unicodedata``, which only matters for recently added characters.
``segmenter="regex"``: then ``regexp_extract_all`` with the token pattern, in the JVM.
``segmenter="jieba"``: then jieba word segmentation in a pandas UDF; segments that do not fully
match the token pattern (spaces, punctuation) are dropped in the JVM.
Then, for both, stop words are removed (MLlib ``StopWordsRemover``) and n-grams 2..ngramMax added
(MLlib ``NGram``), in scikit-learn's order: unigrams first, n-grams built after stop-word removal.
Null text gives an empty array; invalid UTF-8 is replaced with U+FFFD before Python sees it.
"""

from __future__ import annotations

from pyspark.ml import Transformer
from pyspark.ml.feature import NGram, StopWordsRemover
from pyspark.ml.param import TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.stages import StageParams, param
from udfs.text import segment_udf

SEGMENTERS = ("regex", "jieba")
NORMALISATIONS = ("", "NFC", "NFKC", "NFD", "NFKD")
# scikit-learn's default token pattern (Java needs (?U) for Unicode \w and \b); jieba segments: any word.
DEFAULT_PATTERNS = {"regex": r"(?U)\b\w\w+\b", "jieba": r"(?U)\w+"}
# ICU4J's (method, compatibility) for each form.
_ICU_NORMALIZER = {
    "NFC": ("compose", False),
    "NFKC": ("compose", True),
    "NFD": ("decompose", False),
    "NFKD": ("decompose", True),
}


def normalise(text: F.Column, form: str) -> F.Column:
    """Unicode normalisation ``form`` ("" for none) of a non-null string column, by ICU4J in the JVM."""
    if not form:
        return text
    method, compat = _ICU_NORMALIZER[form]
    return F.reflect(F.lit("com.ibm.icu.text.Normalizer"), F.lit(method), text, F.lit(compat))


class TextTokenizer(Transformer, StageParams, DefaultParamsReadable, DefaultParamsWritable):
    """Normalise, lower-case, tokenise (regex or jieba), drop stop words, add n-grams."""

    inputCol = param("text", "column of text")
    outputCol = param("tokens", "output: the terms (array<string>)")
    segmenter = param("regex", f"word segmentation: one of {SEGMENTERS}")
    pattern = param("", "token regex (Java syntax); '' for the segmenter's default")
    normalization = param("NFKC", f"Unicode normalisation: one of {NORMALISATIONS}")
    lowercase = param(True, "lower-case before tokenising")
    stopWords = param([], "terms to drop", TypeConverters.toListString)
    ngramMax = param(1, "add word n-grams for n = 2..ngramMax (1: none)")
    userDict = param("", "jieba user dictionary file ('' for none)")

    def _validate(self) -> None:
        if self.value("segmenter") not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {SEGMENTERS}, got {self.value('segmenter')!r}")
        if self.value("normalization") not in NORMALISATIONS:
            raise ValueError(f"normalization must be one of {NORMALISATIONS}, got {self.value('normalization')!r}")
        if self.value("ngramMax") < 1:
            raise ValueError(f"ngramMax must be >= 1, got {self.value('ngramMax')}")

    def token_pattern(self) -> str:
        """The pattern in force: the user's, or the segmenter's default."""
        return self.getOrDefault(self.pattern) or DEFAULT_PATTERNS[self.getOrDefault(self.segmenter)]

    def _words(self, text: F.Column) -> F.Column:
        text = normalise(text, self.getOrDefault(self.normalization))
        text = F.lower(text) if self.getOrDefault(self.lowercase) else text
        if self.getOrDefault(self.segmenter) == "jieba":
            whole = f"^(?:{self.token_pattern()})$"
            segments = segment_udf(self.getOrDefault(self.userDict))(text)
            return F.filter(segments, lambda word: word.rlike(whole))
        return F.regexp_extract_all(text, F.lit(self.token_pattern()), 0)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        self._validate()
        out = self.getOutputCol()
        tmp = f"__{self.uid}_words"
        text = F.coalesce(F.make_valid_utf8(F.col(self.getInputCol()).cast("string")), F.lit(""))
        df = dataset.withColumn(tmp, self._words(text))
        stop = self.getOrDefault(self.stopWords)
        if stop:
            # Case-insensitive matching only matters when the text keeps its case.
            remover = StopWordsRemover(
                inputCol=tmp,
                outputCol=f"{tmp}_kept",
                stopWords=stop,
                caseSensitive=self.getOrDefault(self.lowercase),
                locale="en_US",
            )
            df = remover.transform(df).drop(tmp).withColumnRenamed(f"{tmp}_kept", tmp)
        grams = [F.col(tmp)]
        for n in range(2, self.getOrDefault(self.ngramMax) + 1):
            df = NGram(n=n, inputCol=tmp, outputCol=f"{tmp}_{n}").transform(df)
            grams.append(F.col(f"{tmp}_{n}"))
        df = df.withColumn(out, F.concat(*grams) if len(grams) > 1 else grams[0])
        return df.drop(tmp, *[f"{tmp}_{n}" for n in range(2, self.getOrDefault(self.ngramMax) + 1)])
