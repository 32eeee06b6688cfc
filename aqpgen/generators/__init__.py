"""Table generators: each module below with GENERATOR_VERSION, target_name, build_K, verify_row is
a generator of the build (docs/ARCHITECTURE.md); the others are their parts.

Modules
-------
power        exact U-statistic tables for polynomial targets p^m (generator).
minimax      bias-minimax tables, E_star, rate_audit (generator); remez: the Remez exchange.
minimax_lp   an independent LP solution of the minimax problem (test oracle).
aqp          variance-optimal programs and their exchange (generator); aqp_conic: one conic
             solve; aqp_eval: fine-grid verification and the V1 matrix.
peers        classical estimators (plug-in, digamma, Laplace, jackknife, Grassberger), plugin_table,
             reference_table.

Generators read no files: a generator that needs a number from another table declares it
(``declared_inputs(params)``) and the build passes it (``build_K(K, params, inputs=...)``).
The comparison of peers and shipped presets is ``aqpgen.compare`` (it reads shipped tables).

Submodules are imported explicitly; this package imports nothing.
"""
