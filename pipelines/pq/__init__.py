"""Product quantization of item vectors in Spark: codebooks, encoder stage, batch ADC search, evaluation.

Modules: ``validation`` (bad input), ``codebooks`` (k-means, OPQ), ``encoder`` (the
``PQEncoder`` Estimator and its Model), ``search`` (batch top-k), ``evaluation`` (recall, MSE),
``faiss_io`` (export to Faiss), ``jobs`` (the two job functions). Numpy kernels live in ``udfs.pq``.
"""

from pipelines.pq.encoder import PQEncoder, PQEncoderModel
from pipelines.pq.search import exact_neighbours, search
from pipelines.pq.validation import PQError

__all__ = ["PQEncoder", "PQEncoderModel", "PQError", "exact_neighbours", "search"]
