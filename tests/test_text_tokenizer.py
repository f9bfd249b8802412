"""Tokeniser stage: normalisation, case, regex tokens, jieba words, stop words, n-grams; shipped stop lists."""

import subprocess
import sys
from pathlib import Path

import pytest
from chispa import assert_df_equality

from pipelines.text.stop_words import load_stop_words, stop_words
from pipelines.text.tokenizer import TextTokenizer

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "doc_id BIGINT, tokens ARRAY<STRING>"


def _tokens(spark, tokenizer, rows):
    docs = spark.createDataFrame(rows, "doc_id BIGINT, text STRING")
    return tokenizer.transform(docs).select("doc_id", "tokens")


def test_regex_tokens_normalised_lowercased_without_stop_words_with_bigrams(spark):
    rows = [(1, "The ﬁrst Café, the BEST café!"), (2, None), (3, ""), (4, "a I x9 ２０２４")]
    got = _tokens(spark, TextTokenizer(stopWords=["the"], ngramMax=2), rows)
    # NFKC turns the ligature into "fi" and the full-width digits into ASCII; one-letter words are not tokens.
    expected = spark.createDataFrame(
        [
            (1, ["first", "café", "best", "café", "first café", "café best", "best café"]),
            (2, []),
            (3, []),
            (4, ["x9", "2024", "x9 2024"]),
        ],
        SCHEMA,
    )
    assert_df_equality(got, expected, ignore_nullable=True)


def test_case_kept_and_stop_words_then_case_insensitive(spark):
    got = _tokens(spark, TextTokenizer(lowercase=False, normalization="", stopWords=["the"]), [(1, "The THE Cat")])
    assert_df_equality(got, spark.createDataFrame([(1, ["Cat"])], SCHEMA), ignore_nullable=True)


def test_custom_pattern_keeps_single_letters(spark):
    got = _tokens(spark, TextTokenizer(pattern=r"(?U)\b\w+\b"), [(1, "a b-c")])
    assert_df_equality(got, spark.createDataFrame([(1, ["a", "b", "c"])], SCHEMA), ignore_nullable=True)


def test_jieba_segments_words_drops_punctuation_and_chinese_stop_words(spark, tmp_path):
    tokenizer = TextTokenizer(segmenter="jieba", stopWords=load_stop_words("chinese"))
    got = _tokens(spark, tokenizer, [(1, "我爱北京天安门。"), (2, "他们的股市大涨，ＡＢＣ公司"), (3, None)])
    expected = spark.createDataFrame(
        [(1, ["爱", "北京", "天安门"]), (2, ["股市", "大涨", "abc", "公司"]), (3, [])], SCHEMA
    )
    assert_df_equality(got, expected, ignore_nullable=True)

    text = [(1, "蓝鲸数据湖上线")]
    assert "蓝鲸数据湖" not in _tokens(spark, TextTokenizer(segmenter="jieba"), text).first().tokens
    user_dict = tmp_path / "user.txt"
    user_dict.write_text("蓝鲸数据湖 10 n\n", encoding="utf-8")
    with_dict = TextTokenizer(segmenter="jieba", userDict=str(user_dict))
    assert _tokens(spark, with_dict, text).first().tokens == ["蓝鲸数据湖", "上线"]


def test_bad_params_are_refused():
    with pytest.raises(ValueError, match="segmenter must be one of"):
        TextTokenizer(segmenter="spaces")
    with pytest.raises(ValueError, match="ngramMax must be >= 1"):
        TextTokenizer(ngramMax=0)
    with pytest.raises(ValueError, match="unknown stop-word list 'french'"):
        stop_words(["french"])


def test_shipped_lists_load_and_load_from_a_py_files_zip(tmp_path):
    english, chinese = load_stop_words("english"), load_stop_words("chinese")
    assert {"the", "and", "of"} <= set(english) and {"的", "了", "我们"} <= set(chinese)
    assert load_stop_words("none") == []
    assert stop_words(["english"], ["zzz"]) == sorted(set(english) | {"zzz"})
    from pipelines.packaging import build_pyfiles

    archive = build_pyfiles(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import pipelines.text.stop_words as s; "
        "assert '.zip' in s.__file__, s.__file__; print(len(s.load_stop_words('chinese')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(archive)], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(chinese)
