r"""One run of the answer-level game with an unmodified TRL ``GRPOTrainer``.

What the trainer is given
-------------------------
* the model and tokenizer of ``aqpgen.experiments.answer_game`` (a tiny Qwen2 built locally, no
  hub), a dataset whose rows cycle through the game's prompts (``shuffle_dataset=False``, so each
  step holds every prompt once, K completions each), and two reward functions that TRL adds:

  - ``game_reward``: :math:`R_z - \tau B` (the answer's reward; B the α-game's constant, 0 for KL);
  - ``answer_term``: :math:`-\tau A\,\hat g`, the answer-level term.  For a table or a classical
    peer it is ``aqpgen.integrations.trl_reward_func(extract_answer, table, scale=-τA)`` -- the
    integration a user would call, with its row-id and precision checks.  For the **oracle** it
    is :math:`-\tau A\,g(\pi_\theta(z))` with the exact :math:`\pi_\theta` read from the logits
    (what perfect estimation would give).  For the **sequence-likelihood proxies** (``PROXIES``,
    log p only) it is :math:`-\tau` times the completion's own log-likelihood under the weights
    that generated it (``seqlik-sum``: the sum of its tokens' log-probabilities; ``seqlik-mean``:
    their mean), read from the model's logits for the completion's token ids.
* the game (``RunConfig.game``): the one-token game of ``answer_game`` or the multi-token game
  of ``sequence_game`` (``max_completion_length`` = its completion length).

* ``GRPOConfig``: ``num_generations=K``, the game's completion length, ``temperature=1``, ``beta=0``,
  ``scale_rewards`` as configured, ``learning_rate`` and ``max_steps`` of the run; everything
  else is TRL's default (AdamW, linear decay of the learning rate to 0, ``loss_type="dapo"``,
  clipping ε = 0.2, one iteration per generation, gradient-norm clip 1.0).
  ``gradient_checkpointing=False`` (TRL's default is True; it only trades memory for time).

What is recorded
----------------
Every ``eval_every`` optimizer steps (and before the first), TV(π_θ, π*) of every prompt from
the exact answer distribution.  With ``record_samples``, every generation batch's answer counts
per prompt beside the exact distribution of the weights that generated it (``game_reward`` is
called after generation and before the update), for the Monte-Carlo check of the harness.

Public names
------------
RunConfig, run_grpo(config, game=None) -> dict, estimator_table(name, Ks, target), make_game(name),
ORACLE, PROXIES, GAMES, SCALES
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from aqpgen.experiments.answer_game import default_game
from aqpgen.experiments.sequence_game import sequence_game
from aqpgen.game.alpha import game_alpha, reward_affine
from aqpgen.game.estimators import PeerEstimator
from aqpgen.generators.peers import peer_names
from aqpgen.integrations import add_row_ids, trl_reward_func
from aqpgen.integrations.grouping import as_table
from aqpgen.numerics.metrics import table_metrics
from aqpgen.records import KResult
from aqpgen.runtime import Table
from aqpgen.store.content import make_table
from aqpgen.targets import LOG, parse_target

__all__ = ["GAMES", "ORACLE", "PROXIES", "SCALES", "RunConfig", "estimator_table", "make_game",
           "run_grpo"]

#: The estimator name of the exact answer-level term (not a table).
ORACLE = "oracle"
#: The sequence-likelihood proxies (not tables): the completion's own log-likelihood, summed over
#: its tokens or averaged per token, in place of log π(answer).
PROXIES = ("seqlik-sum", "seqlik-mean")
#: The games a run can play (``make_game``).
GAMES = ("token", "sequence")
#: TRL ``scale_rewards`` settings the experiment runs.
SCALES = ("none", "group")


@dataclass(frozen=True)
class RunConfig:
    """One GRPO run.

    Attributes
    ----------
    estimator : str
        ``"oracle"``, a sequence-likelihood proxy (``PROXIES``), a classical peer of the target
        (``plugin``, ``digamma``, ``jackknife``, ...), or a table name / ``.h5`` path.
    K : int
        ``num_generations``: completions per prompt.
    seed : int
        Seeds the model's initial weights and TRL's sampling (``GRPOConfig.seed``).
    target : str
        ``"log"`` (KL game) or ``"p^A"`` (α-game, α = A + 1).
    scale_rewards : {"none", "group"}
    game : {"token", "sequence"}
        The one-token game or the multi-token game (``make_game``).
    steps, lr, eval_every : int, float, int
        Optimizer steps, initial learning rate, evaluation period in steps.
    record_samples : bool
        Keep every step's answer counts and exact distributions.
    threads : int
        ``torch.set_num_threads``.
    """

    estimator: str
    K: int
    seed: int = 0
    target: str = "log"
    scale_rewards: str = "none"
    game: str = "token"
    steps: int = 300
    lr: float = 3e-2
    eval_every: int = 10
    record_samples: bool = False
    threads: int = 1
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.K, int) or isinstance(self.K, bool) or self.K < 2:
            raise ValueError(f"K must be an integer >= 2, received {self.K!r}")
        if self.scale_rewards not in SCALES:
            raise ValueError(f"scale_rewards must be one of {SCALES}, received {self.scale_rewards!r}")
        for name in ("steps", "eval_every", "threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, received {v!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, received {self.lr!r}")
        game_alpha(parse_target(self.target))  # a target that is no game's is refused here
        if self.game not in GAMES:
            raise ValueError(f"game must be one of {GAMES}, received {self.game!r}")
        if self.estimator in PROXIES and parse_target(self.target) != LOG:
            raise ValueError(f"estimator {self.estimator!r} (a log-likelihood) estimates log p; "
                             f"the run's target is {self.target!r}")


def estimator_table(name: str, Ks, target=LOG) -> Table:
    """The table an estimator serves through ``trl_reward_func``.

    A classical peer of ``target`` becomes an in-memory table at ``Ks`` with its metrics
    (``aqpgen.numerics.metrics.table_metrics``: certified β, so the precision guard applies as
    to a shipped table); anything else is a table name or path (``aqpgen.runtime.load_table``)."""
    target = parse_target(target)
    if name in peer_names(target):
        est = PeerEstimator(name, target)
        rows = [KResult(int(K), est.values(K), None, table_metrics(int(K), est.values(K), target=target),
                        "ok", {}) for K in sorted(set(Ks))]
        data = make_table(name=name, family="kl" if target == LOG else "pow", target=target.name,
                          method="peer", params={}, provenance={}, results=rows)
        return Table.from_data(data)
    t = as_table(name)
    if parse_target(t.target) != target:
        raise ValueError(f"table {name!r} estimates {t.target!r}, the run's target is {target.spec!r}")
    return t


def _row_metrics(table: Table | None, K: int) -> dict:
    if table is None:
        return {}
    m = table.metrics(K)
    return {k: float(m[k]) for k in ("beta", "beta_cert", "V_inf", "V1") if k in m}


def make_game(name: str = "token"):
    """The game of a run: ``"token"`` (``answer_game.default_game``, one-token completions) or
    ``"sequence"`` (``sequence_game.sequence_game``, L digit tokens, answer their sum)."""
    if name == "token":
        return default_game()
    if name == "sequence":
        return sequence_game()
    raise ValueError(f"game must be one of {GAMES}, received {name!r}")


def _oracle_term(game, holder: dict, g, scale: float):
    """``scale * g(π_θ(z))`` with the exact π_θ of the weights that generated the batch."""
    def answer_term(prompts, completions, prompt_id, **kwargs):
        dists = game.answer_distribution(holder["trainer"].model)
        pz = [dists[i][game.prompts[i].classes.index(game.extract_answer(c))]
              for i, c in zip(prompt_id, completions)]
        return [float(scale * g(np.array([p]))[0]) for p in pz]
    return answer_term


def _proxy_term(game, holder: dict, mean: bool, scale: float):
    """``scale *`` the completion's own log-likelihood under the model that generated it (its
    tokens' log-probabilities, summed or averaged): the sequence-likelihood proxy."""
    def answer_term(prompts, completions, prompt_id, completion_ids, **kwargs):
        pids = [game.vocab[game.prompts[i].prompt] for i in prompt_id]
        lps = game.completion_logprobs(holder["trainer"].model, pids, completion_ids)
        return [float(scale * (lp.mean() if mean else lp.sum())) for lp in lps]
    return answer_term


def _reward_funcs(cfg: RunConfig, game, holder: dict, samples: list):
    """TRL's two reward functions (module docstring) and the table served (None for the oracle
    and the proxies)."""
    target = parse_target(cfg.target)
    A, B = reward_affine(game_alpha(target))
    tau = game.tau

    def game_reward(prompts, completions, prompt_id, **kwargs):
        answers = [game.extract_answer(c) for c in completions]
        if cfg.record_samples:
            dists = game.answer_distribution(holder["trainer"].model)
            counts = [[0] * len(p.classes) for p in game.prompts]
            for i, a in zip(prompt_id, answers):
                counts[i][game.prompts[i].classes.index(a)] += 1
            samples.append({"dist": [d.tolist() for d in dists], "counts": counts})
        return [game.prompts[i].reward(a) - tau * B for i, a in zip(prompt_id, answers)]

    table = None
    if cfg.estimator == ORACLE:
        answer_term = _oracle_term(game, holder, target.g, -tau * A)
    elif cfg.estimator in PROXIES:
        answer_term = _proxy_term(game, holder, cfg.estimator == "seqlik-mean", -tau * A)
    else:
        table = estimator_table(cfg.estimator, [cfg.K], target)
        return [game_reward, trl_reward_func(game.extract_answer, table, scale=-tau * A,
                                             name="answer_term")], table
    answer_term.__name__ = "answer_term"
    return [game_reward, answer_term], table


def _grpo_args(cfg: RunConfig, game, out_dir: str):
    import torch
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=out_dir, per_device_train_batch_size=len(game.prompts) * cfg.K,
        num_generations=cfg.K, max_completion_length=game.completion_length,
        max_steps=cfg.steps, learning_rate=cfg.lr, scale_rewards=cfg.scale_rewards, beta=0.0,
        temperature=1.0, seed=cfg.seed, shuffle_dataset=False, gradient_checkpointing=False,
        bf16=False, use_cpu=not torch.cuda.is_available(), report_to=[], save_strategy="no",
        logging_steps=10 ** 9, disable_tqdm=True, dataloader_num_workers=0, **cfg.extra)


def _monitor(cfg: RunConfig, game, alpha: float, curve_steps: list, curve_tv: list, last: dict):
    from transformers import TrainerCallback

    class Monitor(TrainerCallback):
        def _record(self, step, model):
            dists = game.answer_distribution(model)
            curve_steps.append(int(step))
            curve_tv.append(game.tv(dists, alpha))
            last["dist"] = [d.tolist() for d in dists]

        def on_train_begin(self, args, state, control, model=None, **kw):
            self._record(0, model)

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % cfg.eval_every == 0 or state.global_step == state.max_steps:
                self._record(state.global_step, model)

    return Monitor()


def run_grpo(config: RunConfig, game=None) -> dict:
    """Train with TRL per ``config``; return the run's record (JSON-serialisable).

    Keys: ``config`` (the RunConfig as a dict), ``steps`` (evaluation steps), ``tv`` (per
    evaluation, TV of every prompt), ``final_tv`` (per prompt), ``final_dist`` (per prompt, the
    exact answer distribution after the last step, classes in scenario order), ``metrics`` (β,
    β̄, V∞, V1 of the served row; empty for the oracle and the proxies), ``seconds`` (wall time
    of ``train()``), ``cpu_seconds`` (its CPU time: what the run costs on an idle core), and with ``record_samples`` ``samples``: per generation,
    ``{"dist": [...], "counts": [...]}`` per prompt (classes in scenario order)."""
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOTrainer

    cfg = config
    game = game or make_game(cfg.game)
    torch.set_num_threads(cfg.threads)
    P = len(game.prompts)
    holder: dict = {}
    samples: list = []
    reward_funcs, table = _reward_funcs(cfg, game, holder, samples)
    rows = [{"prompt": game.prompts[j % P].prompt, "prompt_id": j % P} for j in range(P * cfg.steps)]
    dataset = add_row_ids(Dataset.from_list(rows))
    curve_steps: list[int] = []
    curve_tv: list[list[float]] = []
    last: dict = {}
    monitor = _monitor(cfg, game, game_alpha(parse_target(cfg.target)), curve_steps, curve_tv, last)
    with tempfile.TemporaryDirectory(prefix="aqpgen-grpo-") as out_dir:
        trainer = GRPOTrainer(model=game.build_model(cfg.seed), processing_class=game.build_tokenizer(),
                              reward_funcs=reward_funcs, args=_grpo_args(cfg, game, out_dir),
                              train_dataset=dataset, callbacks=[monitor])
        trainer.remove_callback(PrinterCallback)  # the end-of-training metrics dump
        holder["trainer"] = trainer
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    rec = {"config": asdict(cfg), "steps": curve_steps, "tv": curve_tv, "final_tv": curve_tv[-1],
           "final_dist": last["dist"], "metrics": _row_metrics(table, cfg.K), "seconds": seconds,
           "cpu_seconds": cpu}
    if cfg.record_samples:
        rec["samples"] = samples
    return rec
