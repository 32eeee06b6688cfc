"""The alignment game: does a biased reward table move the fixed point? (docs/MATH.md §8, §2b)

Modules (each lists its own public names)
-----------------------------------------
alpha       the α-family regulariser φ_α, its marginal cost φ'_α = A p^(α-1) + B, the known
            optimum (mpmath bisection on λ), KKT residual.
scenarios   Scenario, SCENARIOS (``zipf``, ``head``, ``grpo-head``, ``grpo-tail``), get_scenario,
            tv_distance, loglog_slope.
estimators  peers, table files (through ``aqpgen.runtime``), in-memory tables, the oracle; each
            carries a Target (``aqpgen.targets``) that decides the game it plays.
meanfn      accurate mean functions (exact Chebyshev conversion), the game's marginal cost,
            the effective table of within-group baselines (RLOO / GRPO group mean).
dynamics    exact expected dynamics and their fixed point (dynamics + direct solve), run_exact.
sampled     sampled REINFORCE with the trainers' advantage conventions, run_sampled.
study       the result tables of the README (α-game and advantage conventions) as data and
            Markdown; ``python -m aqpgen.game.study`` writes docs/game.md.
simulate    compatibility facade re-exporting everything below.
"""

from aqpgen.game.alpha import (
    alpha_optimum,
    game_alpha,
    game_target,
    kkt_residual,
    phi_prime,
    reward_affine,
)
from aqpgen.game.dynamics import (
    DynamicsResult,
    ExactResult,
    SolveResult,
    exact_sweep,
    fixed_point_dynamics,
    fixed_point_solve,
    run_exact,
    softmax,
)
from aqpgen.game.estimators import (
    ORACLE,
    PEER_NAMES,
    TABLE_NAMES,
    ArrayEstimator,
    Estimator,
    OracleEstimator,
    PeerEstimator,
    TableEstimator,
    as_estimator,
    available_estimators,
    get_estimator,
    peer_names,
    table_names,
)
from aqpgen.game.meanfn import (
    BASELINES,
    COUNT_COUPLED_BASELINES,
    MeanFunction,
    OracleMean,
    game_function,
    loo_compensated_table,
    loo_compensation,
    loo_effective_table,
    mean_function,
)
from aqpgen.game.sampled import (
    SCALES,
    STD_EPS,
    SampledResult,
    advantage_rms,
    advantages,
    game_reward,
    run_sampled,
    sampled_sweep,
    self_inclusive_counts,
)
from aqpgen.game.scenarios import (
    SCENARIOS,
    Scenario,
    get_scenario,
    loglog_slope,
    tv_distance,
)

__all__ = [
    "BASELINES", "COUNT_COUPLED_BASELINES", "ORACLE", "PEER_NAMES", "SCALES", "SCENARIOS",
    "STD_EPS", "TABLE_NAMES", "ArrayEstimator", "DynamicsResult", "Estimator", "ExactResult",
    "MeanFunction", "OracleEstimator", "OracleMean", "PeerEstimator", "SampledResult", "Scenario",
    "SolveResult", "TableEstimator", "advantage_rms", "advantages", "alpha_optimum", "as_estimator",
    "available_estimators", "exact_sweep", "fixed_point_dynamics", "fixed_point_solve",
    "game_alpha", "game_function", "game_reward", "game_target", "get_estimator", "get_scenario",
    "kkt_residual", "loglog_slope", "loo_compensated_table", "loo_compensation",
    "loo_effective_table", "mean_function", "peer_names", "phi_prime", "reward_affine",
    "run_exact", "run_sampled", "sampled_sweep", "self_inclusive_counts", "softmax", "table_names",
    "tv_distance",
]
