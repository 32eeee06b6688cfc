"""aqpgen — unbiased and near-unbiased answer-level reward tables.

Given K sampled completions, completion i has the self-inclusive count n_i (1 <= n_i <= K) of
completions sharing its answer.  An *estimator* for batch size K is a table c_K[1..K]; the reward
of completion i is c_K[n_i].  See ``docs/ARCHITECTURE.md`` for the module map.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
