"""Supervised fastText benchmark (local[2]): ``bench_text_classification.py`` on THUCNews titles with the fastText
methods only, ours ``fasttext`` against the official ``fasttext`` library (same tokens and settings; see there).

Last line: one JSON object. Usage: ``python benchmarks/bench_fasttext.py [--data ../shared/data] [--epoch 10]
[--lr 0.5] [--dim 100] [--word-ngrams 2] [--bucket 2000000] [--loss softmax|hs|both] [--epochs-per-sync N]``
(``--only fudan`` runs Fudan instead).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_text_classification import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "thucnews", "--methods", "ft", *sys.argv[1:]])
