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

from typing import Any

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.feature import NGram, StopWordsRemover
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from udfs.text import segment_udf

SEGMENTERS = ("regex", "jieba")
NORMALISATIONS = ("", "NFC", "NFKC", "NFD", "NFKD")
# scikit-learn's default token pattern (Java needs (?U) for Unicode \w and \b); jieba segments: any word.
DEFAULT_PATTERNS = {"regex": r"(?U)\b\w\w+\b", "jieba": r"(?U)\w+"}
# ICU4J's (method, compatibility) for each form.
_ICU_NORMALIZER = {"NFC": ("compose", False), "NFKC": ("compose", True), "NFD": ("decompose", False),
                   "NFKD": ("decompose", True)}


def normalise(text: F.Column, form: str) -> F.Column:
    """Unicode normalisation ``form`` ("" for none) of a non-null string column, by ICU4J in the JVM."""
    if not form:
        return text
    method, compat = _ICU_NORMALIZER[form]
    return F.reflect(F.lit("com.ibm.icu.text.Normalizer"), F.lit(method), text, F.lit(compat))


class TextTokenizer(Transformer, HasInputCol, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Normalise, lower-case, tokenise (regex or jieba), drop stop words, add n-grams."""

    segmenter = Param(Params._dummy(), "segmenter", f"word segmentation: one of {SEGMENTERS}",
                      typeConverter=TypeConverters.toString)
    pattern = Param(Params._dummy(), "pattern", "token regex (Java syntax); '' for the segmenter's default",
                    typeConverter=TypeConverters.toString)
    normalization = Param(Params._dummy(), "normalization", f"Unicode normalisation: one of {NORMALISATIONS}",
                          typeConverter=TypeConverters.toString)
    lowercase = Param(Params._dummy(), "lowercase", "lower-case before tokenising",
                      typeConverter=TypeConverters.toBoolean)
    stopWords = Param(Params._dummy(), "stopWords", "terms to drop", typeConverter=TypeConverters.toListString)
    ngramMax = Param(Params._dummy(), "ngramMax", "add word n-grams for n = 2..ngramMax (1: none)",
                     typeConverter=TypeConverters.toInt)
    userDict = Param(Params._dummy(), "userDict", "jieba user dictionary file ('' for none)",
                     typeConverter=TypeConverters.toString)

    @keyword_only
    def __init__(self, *, inputCol: str = "text", outputCol: str = "tokens", segmenter: str = "regex",
                 pattern: str = "", normalization: str = "NFKC", lowercase: bool = True,
                 stopWords: list[str] | None = None, ngramMax: int = 1, userDict: str = "") -> None:
        super().__init__()
        self._setDefault(inputCol="text", outputCol="tokens", segmenter="regex", pattern="",
                         normalization="NFKC", lowercase=True, stopWords=[], ngramMax=1, userDict="")
        self.setParams(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> "TextTokenizer":
        """Set any of the constructor's parameters, validated."""
        self._set(**{k: v for k, v in kwargs.items() if v is not None})
        self._check()
        return self

    def _check(self) -> None:
        if self.getOrDefault(self.segmenter) not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {SEGMENTERS}, got {self.getOrDefault(self.segmenter)!r}")
        if self.getOrDefault(self.normalization) not in NORMALISATIONS:
            raise ValueError(f"normalization must be one of {NORMALISATIONS}, "
                             f"got {self.getOrDefault(self.normalization)!r}")
        if self.getOrDefault(self.ngramMax) < 1:
            raise ValueError(f"ngramMax must be >= 1, got {self.getOrDefault(self.ngramMax)}")

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
        self._check()
        out = self.getOutputCol()
        tmp = f"__{self.uid}_words"
        text = F.coalesce(F.make_valid_utf8(F.col(self.getInputCol()).cast("string")), F.lit(""))
        df = dataset.withColumn(tmp, self._words(text))
        stop = self.getOrDefault(self.stopWords)
        if stop:
            # Case-insensitive matching only matters when the text keeps its case.
            remover = StopWordsRemover(inputCol=tmp, outputCol=f"{tmp}_kept", stopWords=stop,
                                       caseSensitive=self.getOrDefault(self.lowercase), locale="en_US")
            df = remover.transform(df).drop(tmp).withColumnRenamed(f"{tmp}_kept", tmp)
        grams = [F.col(tmp)]
        for n in range(2, self.getOrDefault(self.ngramMax) + 1):
            df = NGram(n=n, inputCol=tmp, outputCol=f"{tmp}_{n}").transform(df)
            grams.append(F.col(f"{tmp}_{n}"))
        df = df.withColumn(out, F.concat(*grams) if len(grams) > 1 else grams[0])
        return df.drop(tmp, *[f"{tmp}_{n}" for n in range(2, self.getOrDefault(self.ngramMax) + 1)])
