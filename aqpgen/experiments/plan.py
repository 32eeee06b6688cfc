"""The experiment's plan (which runs), running it on worker processes, and its results file.

The default plan (``default_plan()``; ``aqpgen experiment`` runs it, ``make experiment`` too)
-----------------------------------------------------------------------------------------
* **KL game** (target log p): the oracle, the classical peers plugin, digamma, jackknife and grassberger,
  the minimax table and every shipped KL AQP preset, at K = 8, 16, 32, seeds 0, 1, 2, with TRL's
  ``scale_rewards="none"`` (what the README recommends) and ``"group"`` (TRL's default).
* **held-out K** of the KL game: the same estimators at K = 12, 15, 24 (``HELD_OUT_KS``;
  one odd K),
  ``scale_rewards="none"``: with the multi-token game, the runs ``aqpgen recommend``'s λ is
  validated on (it is fitted on K = 8, 16, 32, ``FIT_KS``).
* **multi-token game** (``sequence_game``; KL): the oracle, the sequence-likelihood proxies
  ``seqlik-sum`` and ``seqlik-mean``, every classical peer of log p and every KL table (shipped,
  and the ``CANDIDATES``), at K = 8, 16 (``SEQUENCE_KS``), seeds 0, 1, 2,
  ``scale_rewards="none"``.
* **α-game** (α = 0.5, target p^-0.5): the oracle, the plug-in (n/K)^-0.5, the add-½ and
  jackknife corrections and the shipped p^-0.5 tables, at K = 8, 16, 32, seeds 0, 1, 2,
  ``scale_rewards="none"``.
* every run: 300 optimizer steps, learning rate 3e-2 (linearly decayed to 0, TRL's default
  schedule), TV evaluated every 10 steps.

A table row the trainer may not use (its float32 rounding breaks the row's certificate, or the
row is not ``"ok"``) is not run; the plan records it under ``skipped`` with the reason.

Running
-------
:func:`run_plan` runs the configurations on ``jobs`` worker processes (spawned: torch and TRL
are imported in the workers only, one thread each), largest K first, prints one line per
finished run, and returns the results object; :func:`write_results` writes it atomically as
JSON.  A run that raises stops the experiment with the run's configuration in the message.

Public names
------------
Arm, Plan, default_plan(), quick_plan(), CANDIDATES, FIT_KS, HELD_OUT_KS, SEQUENCE_KS, plan_runs(plan) -> (configs, skipped),
build_candidates(plan, out_dir), run_plan(plan, jobs), label(estimator),
prediction(game, target, estimator, K) -- the simulator's TV for the same game,
write_results(path, results), read_results(path), RESULTS_SCHEMA, describe_game(game),
describe_plan(plan)
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from importlib import metadata
from multiprocessing import get_context

from aqpgen.build.build import build
from aqpgen.errors import ConvergenceError
from aqpgen.experiments.grpo_run import (
    ORACLE,
    PROXIES,
    RunConfig,
    estimator_table,
    make_game,
    run_grpo,
)
from aqpgen.game.dynamics import run_exact
from aqpgen.generators.peers import peer_names
from aqpgen.integrations.grouping import check_served
from aqpgen.runtime.precision import ImpreciseRowError
from aqpgen.store.atomic import write_text_atomic
from aqpgen.store.locate import available_tables
from aqpgen.targets import LOG, parse_target, table_prefix

__all__ = ["CANDIDATES", "FIT_KS", "HELD_OUT_KS", "RESULTS_SCHEMA", "SEQUENCE_KS", "Arm", "Plan",
           "build_candidates", "default_plan", "describe_game", "describe_plan", "label",
           "plan_runs", "prediction", "quick_plan", "read_results", "run_plan",
           "write_results"]

#: Schema name and version of the results file (version 1, one game, is still read).
RESULTS_SCHEMA = ("aqpgen.experiment", 2)
#: The dtype TRL stores rewards in (the precision guard of every table row is checked for it).
SERVED_DTYPE = "float32"


#: Presets run beside the shipped ones without being shipped (``Plan.candidates``): the
#: shape-constrained KL preset (c_K[n] nondecreasing in n, c_K[K] <= 0), built with its
#: certificates at the experiment's K while its table is not shipped (a shipped name is played
#: as shipped, not rebuilt).  The exploration that chose the shipped ρ presets ran ρ = 2 ... 32
#: this way.
CANDIDATES: tuple = (("kl-aqp-rho4-mono", {"rho": 4, "shape": "monotone"}),)
#: K of the one-token KL game on which ``aqpgen recommend``'s λ is fitted, and the disjoint runs
#: it is validated on: other K of the same game, and the multi-token game.
FIT_KS = (8, 16, 32)
HELD_OUT_KS = (12, 15, 24)  # 15: one odd K, where Grassberger's G(n) is off by ~1/K at p = 1
SEQUENCE_KS = (8, 16)


@dataclass(frozen=True)
class Arm:
    """One comparison: estimators x Ks x seeds x scalings for one target and game
    (``grpo_run.GAMES``)."""

    target: str
    estimators: tuple[str, ...]
    Ks: tuple[int, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    scales: tuple[str, ...] = ("none",)
    game: str = "token"


@dataclass(frozen=True)
class Plan:
    """The experiment: arms plus the per-run settings shared by all.

    ``candidates``: AQP presets that are not shipped, as ``(name, params)`` of a ``[[table]]`` of
    method "aqp" (e.g. ``("kl-aqp-rho3", {"rho": 3})``, ``("pow-0.5-aqp-rho16", {"rho": 16,
    "target": "p^-0.5"})``); :func:`run_plan` builds them with ``aqpgen.build.build``
    (certificates included) at the Ks of the arms of their target, into a temporary directory,
    and adds them to those arms."""

    arms: tuple[Arm, ...]
    candidates: tuple[tuple[str, dict], ...] = ()
    steps: int = 300
    lr: float = 3e-2
    eval_every: int = 10
    name: str = "default"
    extra: dict = field(default_factory=dict)


def label(estimator: str) -> str:
    """The name an estimator is reported under: a table path's file stem, else the name."""
    return os.path.splitext(os.path.basename(estimator))[0] if estimator.endswith(".h5") else estimator


def _toml_table(name: str, family: str, method: str, params: dict, Ks) -> str:
    p = ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(params.items()))
    return (f'[[table]]\nname = "{name}"\nfamily = "{family}"\nmethod = "{method}"\n'
            f'params = {{ {p} }}\nKs = {list(Ks)}\n')


def build_candidates(plan: Plan, out_dir) -> Plan:
    """Build ``plan.candidates`` into ``out_dir`` (docstring of ``Plan``) at the Ks of the arms of
    their target, with the target's minimax table first (the AQP rows read E*_K from it); return
    the plan with their paths added to those arms (``plan`` itself when it has none)."""
    if not plan.candidates:
        return plan
    by_target: dict = {}
    for name, params in plan.candidates:
        t = parse_target(params.get("target", "log"))
        if not name.startswith(table_prefix(t) + "-aqp-"):
            raise ValueError(f"candidate {name!r}: an AQP preset of {t.spec} is named "
                             f"'{table_prefix(t)}-aqp-...'")
        by_target.setdefault(t, []).append((name, params))
    spec, added = [], {}
    for t, cands in by_target.items():
        Ks = sorted({K for a in plan.arms if parse_target(a.target) == t for K in a.Ks})
        if not Ks:
            raise ValueError(f"candidates {[n for n, _ in cands]} need an arm of target {t.spec}")
        family = "kl" if t == LOG else "pow"
        spec.append(_toml_table(f"{table_prefix(t)}-minimax", family, "minimax",
                                {} if t == LOG else {"target": t.spec}, Ks))
        spec += [_toml_table(n, family, "aqp", dict(p), Ks) for n, p in cands]
        added[t] = tuple(os.path.join(os.fspath(out_dir), f"{n}.h5") for n, _ in cands)
    spec_path = os.path.join(os.fspath(out_dir), "candidates.toml")
    with open(spec_path, "w", encoding="utf-8") as f:
        f.write("\n".join(spec))
    build(spec_path, out_dir, jobs=1)
    arms = tuple(Arm(a.target, a.estimators + added.get(parse_target(a.target), ()), a.Ks, a.seeds,
                     a.scales, a.game) for a in plan.arms)
    return Plan(arms, (), plan.steps, plan.lr, plan.eval_every, plan.name, dict(plan.extra))


def _shipped(target) -> tuple[str, ...]:
    """Shipped tables of ``target`` found by the locator, minimax first, then AQP presets."""
    prefix = table_prefix(parse_target(target))
    names = sorted(n for n in available_tables() if n.startswith(prefix + "-"))
    return tuple(sorted(names, key=lambda n: (not n.endswith("-minimax"), n)))


def default_plan() -> Plan:
    """The plan of the module docstring."""
    kl_peers = tuple(p for p in ("plugin", "digamma", "jackknife", "grassberger") if p in peer_names(LOG))
    alpha_target = "p^-0.5"
    alpha_peers = tuple(p for p in ("plugin", "laplace", "jackknife")
                        if p in peer_names(parse_target(alpha_target)))
    kl = (ORACLE,) + kl_peers + _shipped("log")
    seq = (ORACLE,) + PROXIES + tuple(peer_names(LOG)) + _shipped("log")
    return Plan(arms=(
        Arm("log", kl, FIT_KS, scales=("none", "group")),
        Arm("log", kl, HELD_OUT_KS),
        Arm(alpha_target, (ORACLE,) + alpha_peers + _shipped(alpha_target), FIT_KS),
        Arm("log", seq, SEQUENCE_KS, game="sequence"),
    ), candidates=tuple(c for c in CANDIDATES if c[0] not in available_tables()))


def quick_plan() -> Plan:
    """A minutes-long plan: oracle against plug-in, K = 8, two seeds, 60 steps."""
    return Plan(arms=(Arm("log", (ORACLE, "plugin"), (8,), seeds=(0, 1)),
                      Arm("log", (ORACLE, "seqlik-mean"), (8,), seeds=(0, 1), game="sequence")),
                steps=60, name="quick")


def _serve_reason(name: str, K: int, target) -> str | None:
    """None if the trainer may use the estimator at K, else why not."""
    if name == ORACLE or name in PROXIES:
        return None
    try:
        table = estimator_table(name, [K], target)
        check_served(table, K, SERVED_DTYPE, setting=f"K={K}", consumer="TRL stores rewards as float32")
    except (ImpreciseRowError, ValueError) as exc:
        return str(exc).split("\n")[0]
    return None


def plan_runs(plan: Plan) -> tuple[list[RunConfig], list[dict]]:
    """The run configurations of a plan, largest K first, and the skipped (estimator, K)."""
    runs, skipped = [], []
    for arm in plan.arms:
        for K in arm.Ks:
            for name in arm.estimators:
                why = _serve_reason(name, K, arm.target)
                if why is not None:
                    skipped.append({"target": arm.target, "estimator": label(name), "K": K,
                                    "game": arm.game, "reason": why})
                    continue
                runs += [RunConfig(name, K, seed=s, target=arm.target, scale_rewards=sc,
                                   game=arm.game, steps=plan.steps, lr=plan.lr, eval_every=plan.eval_every,
                                   extra=dict(plan.extra))
                         for sc in arm.scales for s in arm.seeds]
    runs.sort(key=lambda c: -c.K)
    return runs, skipped


def prediction(game, target: str, estimator: str, K: int) -> float:
    """The simulator's final TV for the game: ``aqpgen.game.dynamics.run_exact`` on each prompt's
    scenario with ``baseline="group"`` (TRL's group-mean baseline: the expected step follows
    the table's leave-one-out effective table), mean over the prompts.  The fixed point of the
    *expected* dynamics: no sampling noise, no std scaling.  NaN when ``run_exact`` raises
    ``ConvergenceError`` (its fixed point and a direct solve disagree): the page shows no
    prediction there rather than losing the runs."""
    scen = [p.scenario for p in game.prompts]
    try:
        tv = {s.name: run_exact(s, estimator, K, baseline="group", target=target).tv for s in scen}
    except ConvergenceError:
        return math.nan  # the simulator could not certify its fixed point: no prediction
    return sum(tv[s.name] for s in scen) / len(scen)


def _versions() -> dict:
    out = {"python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count()}
    for pkg in ("torch", "transformers", "trl", "accelerate", "datasets", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _worker_init() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()


def _run_one(cfg: RunConfig) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_grpo(cfg)


def _describe(cfg: RunConfig) -> str:
    return (f"K={cfg.K} {label(cfg.estimator)} seed {cfg.seed} target {cfg.target} "
            f"scale_rewards={cfg.scale_rewards}" + ("" if cfg.game == "token" else f" game {cfg.game}"))


def run_plan(plan: Plan, jobs: int = 2, *, echo: Callable[[str], None] | None = print) -> dict:
    """Run every configuration of ``plan`` on ``jobs`` processes; return the results object."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, received {jobs!r}")
    with tempfile.TemporaryDirectory(prefix="aqpgen-candidates-") as tmp:
        if plan.candidates and echo:
            echo(f"building the candidate presets {', '.join(n for n, _ in plan.candidates)}")
        return _run(plan, build_candidates(plan, tmp), jobs, echo)


def _run(plan: Plan, runnable: Plan, jobs: int, echo) -> dict:
    configs, skipped = plan_runs(runnable)
    if not configs:
        raise ValueError(f"plan {plan.name!r} has no run the trainer can serve")
    for s in skipped:
        if echo:
            echo(f"skipped: {s['estimator']} at K={s['K']} ({s['target']}): {s['reason']}")
    t0 = time.perf_counter()
    records: list[dict] = []
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init) as pool:
        futures = {pool.submit(_run_one, c): c for c in configs}
        for i, fut in enumerate(as_completed(futures), 1):
            cfg = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:
                for f in futures:
                    f.cancel()
                raise RuntimeError(f"experiment run failed ({_describe(cfg)}): {exc}") from exc
            rec["estimator"] = label(cfg.estimator)
            records.append(rec)
            if echo:
                tv = sum(rec["final_tv"]) / len(rec["final_tv"])
                echo(f"[{i:3d}/{len(configs)}] {_describe(cfg)}: final TV {tv:.4f} "
                     f"({rec['seconds']:.1f} s, {time.perf_counter() - t0:.0f} s elapsed)")
    key = [asdict(c) for c in configs]
    records.sort(key=lambda r: key.index(r["config"]))
    game = make_game("token")
    if echo:
        echo("the simulator's predictions for the same game (aqpgen.game.dynamics.run_exact)")
    predictions: dict = {}
    for c in configs:
        if c.game != "token" or c.estimator in PROXIES:
            continue
        per = predictions.setdefault(c.target, {}).setdefault(str(c.K), {})
        if label(c.estimator) not in per:
            per[label(c.estimator)] = prediction(game, c.target, c.estimator, c.K)
    return {
        "schema": RESULTS_SCHEMA[0], "version": RESULTS_SCHEMA[1],
        "plan": describe_plan(plan),
        "game": describe_game(game),
        "games": {g: describe_game(make_game(g)) for g in sorted({c.game for c in configs})},
        "environment": _versions(), "jobs": jobs, "wall_seconds": time.perf_counter() - t0,
        "command": " ".join(["aqpgen"] + sys.argv[1:]) if sys.argv else "",
        "skipped": skipped, "predictions": predictions, "runs": records,
    }


def describe_game(game) -> dict:
    out = {"prompts": [{"prompt": p.prompt, "scenario": p.scenario.name, "best": p.order[0],
                        "order": list(p.order), "R": list(p.scenario.R),
                        "optimum": game.optimum(i).tolist()} for i, p in enumerate(game.prompts)],
           "tau": game.tau, "hidden_size": game.hidden_size,
           "completion_length": game.completion_length}
    if hasattr(game, "multiplicity"):
        out.update(digits=game.digits, multiplicity=game.multiplicity())
    return out


def describe_plan(plan: Plan) -> dict:
    """The plan as the results file records it."""
    return {"name": plan.name, "steps": plan.steps, "lr": plan.lr, "eval_every": plan.eval_every,
            "arms": [asdict(a) for a in plan.arms],
            "candidates": [{"name": n, "params": p} for n, p in plan.candidates]}


def write_results(path, results: dict) -> None:
    """Write the results object as JSON, atomically (``aqpgen.store.atomic``)."""
    write_text_atomic(path, json.dumps(results, indent=1, sort_keys=True) + "\n")


def read_results(path) -> dict:
    """Read a results file, checking its schema (ValueError naming the file otherwise)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("schema") != RESULTS_SCHEMA[0] or data.get("version") not in (1, RESULTS_SCHEMA[1]):
        raise ValueError(f"{os.fspath(path)!r} is not an aqpgen experiment results file "
                         f"(schema {data.get('schema')!r} version {data.get('version')!r}, "
                         f"expected {RESULTS_SCHEMA[0]!r} version {RESULTS_SCHEMA[1]})")
    return data
