"""Numerics shared by every generator: one home per quantity (docs/ARCHITECTURE.md).

Modules and their public names
------------------------------
bernstein  binom_pmf, as_p, mean_poly, second_moment, variance, exact_values, to_chebyshev_exact,
           to_chebyshev_arb, to_chebyshev_f64, mean_poly_cheb, from_chebyshev_exact,
           cheb_to_bernstein (Bernstein basis, binomial pmf, Chebyshev <-> Bernstein).
grids      theta_grid, theta_grid_closed, gauss_legendre01 (angle grids, quadrature on [0, 1]).
extrema    local_maxima, golden_max, refine_maxima (locating sups).
fit        loglog_slope, neville0, richardson_limit (rates and limits).
precision  GUARD_BITS, work_prec, work_dps, flint_prec, mp_prec (the one precision policy).
metrics    table_metrics (kl_metrics), weighted_bias, variance_sup, variance_mean,
           variance_mean_exact (beta, V_inf, V1: the stored numbers).
certify    certify_beta, certify_exact, Certificate, H3_CONST (rigorous beta enclosures).

Submodules are imported explicitly (``from aqpgen.numerics.metrics import table_metrics``);
this package imports nothing, so importing it costs nothing.
"""
