"""The alignment game: does a biased reward table move the fixed point? (docs/MATH.md §8, §2b)

Modules (each lists its own public names)
-----------------------------------------
alpha       the α-family regulariser φ_α, its marginal cost φ'_α = A p^(α-1) + B, the known
            optimum (mpmath bisection on λ), KKT residual.
scenarios   Scenario, SCENARIOS (``zipf``, ``head``, ``grpo-head``, ``grpo-tail``), get_scenario,
            tv_distance, tv_slope.
estimators  peers, table files (through ``aqpgen.runtime``), in-memory tables, the oracle; each
            carries a Target (``aqpgen.targets``) that decides the game it plays.
meanfn      accurate mean functions (exact Chebyshev conversion), the game's marginal cost,
            the effective table of within-group baselines (RLOO / GRPO group mean).
dynamics    exact expected dynamics and their fixed point (dynamics + direct solve), run_exact.
sampled     sampled REINFORCE with the trainers' advantage conventions, run_sampled.
study       the result tables of the README (α-game and advantage conventions) as data and
            Markdown; ``python -m aqpgen.game.study`` writes docs/game.md.

Each name has one home: import it from its module (``from aqpgen.game.dynamics import
run_exact``); the package itself re-exports nothing.
"""
