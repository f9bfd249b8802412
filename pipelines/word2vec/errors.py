"""Errors a user can act on, raised before any training starts."""

from __future__ import annotations

from pipelines.errors import UserError


class Word2VecError(UserError):
    """Bad Word2Vec input or settings: empty corpus, empty vocabulary, a model too large for memory."""


class EmptyCorpusError(Word2VecError):
    """The corpus has no tokens."""


class EmptyVocabularyError(Word2VecError):
    """No word reaches min_count."""


class ModelTooLargeError(Word2VecError):
    """The model's arrays do not fit in the configured driver or executor memory."""
