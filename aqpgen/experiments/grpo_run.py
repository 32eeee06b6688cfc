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
    (what perfect estimation would give).

* ``GRPOConfig``: ``num_generations=K``, one generated token, ``temperature=1``, ``beta=0``,
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
RunConfig, run_grpo(config, game=None) -> dict, estimator_table(name, Ks, target), ORACLE
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from aqpgen.experiments.answer_game import AnswerGame, default_game, extract_answer
from aqpgen.game.alpha import game_alpha, reward_affine
from aqpgen.game.estimators import PeerEstimator, peer_names
from aqpgen.integrations import add_row_ids, trl_reward_func
from aqpgen.integrations.grouping import as_table
from aqpgen.numerics.metrics import table_metrics
from aqpgen.records import KResult
from aqpgen.runtime import Table
from aqpgen.store.content import make_table
from aqpgen.targets import LOG, parse_target

__all__ = ["ORACLE", "SCALES", "RunConfig", "estimator_table", "run_grpo"]

#: The estimator name of the exact answer-level term (not a table).
ORACLE = "oracle"
#: TRL ``scale_rewards`` settings the experiment runs.
SCALES = ("none", "group")


@dataclass(frozen=True)
class RunConfig:
    """One GRPO run.

    Attributes
    ----------
    estimator : str
        ``"oracle"``, a classical peer of the target (``plugin``, ``digamma``, ``jackknife``,
        ...), or a table name / ``.h5`` path.
    K : int
        ``num_generations``: completions per prompt.
    seed : int
        Seeds the model's initial weights and TRL's sampling (``GRPOConfig.seed``).
    target : str
        ``"log"`` (KL game) or ``"p^A"`` (α-game, α = A + 1).
    scale_rewards : {"none", "group"}
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


def run_grpo(config: RunConfig, game: AnswerGame | None = None) -> dict:
    """Train with TRL per ``config``; return the run's record (JSON-serialisable).

    Keys: ``config`` (the RunConfig as a dict), ``steps`` (evaluation steps), ``tv`` (per
    evaluation, TV of every prompt), ``final_tv`` (per prompt), ``metrics`` (β, β̄, V∞, V1 of the
    served row; empty for the oracle), ``seconds`` (wall time of ``train()``), and with
    ``record_samples`` ``samples``: per generation, ``{"dist": [...], "counts": [...]}`` per
    prompt (classes in scenario order)."""
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    cfg = config
    game = game or default_game()
    target = parse_target(cfg.target)
    alpha = game_alpha(target)
    A, B = reward_affine(alpha)
    tau = game.tau
    torch.set_num_threads(cfg.threads)
    P = len(game.prompts)
    holder: dict = {}
    samples: list = []

    def game_reward(prompts, completions, prompt_id, **kwargs):
        answers = [extract_answer(c) for c in completions]
        if cfg.record_samples:
            dists = game.answer_distribution(holder["trainer"].model)
            counts = [[0] * len(p.classes) for p in game.prompts]
            for i, a in zip(prompt_id, answers):
                counts[i][game.prompts[i].classes.index(a)] += 1
            samples.append({"dist": [d.tolist() for d in dists], "counts": counts})
        return [game.prompts[i].reward(a) - tau * B for i, a in zip(prompt_id, answers)]

    table = None
    if cfg.estimator == ORACLE:
        g = target.g

        def answer_term(prompts, completions, prompt_id, **kwargs):
            dists = game.answer_distribution(holder["trainer"].model)
            out = []
            for i, c in zip(prompt_id, completions):
                pz = dists[i][game.prompts[i].classes.index(extract_answer(c))]
                out.append(float(-tau * A * g(np.array([pz]))[0]))
            return out

        answer_term.__name__ = "answer_term"
    else:
        table = estimator_table(cfg.estimator, [cfg.K], target)
        answer_term = trl_reward_func(extract_answer, table, scale=-tau * A, name="answer_term")

    rows = [{"prompt": game.prompts[j % P].prompt, "prompt_id": j % P} for j in range(P * cfg.steps)]
    dataset = add_row_ids(Dataset.from_list(rows))
    curve_steps: list[int] = []
    curve_tv: list[list[float]] = []

    class Monitor(TrainerCallback):
        def _record(self, step, model):
            curve_steps.append(int(step))
            curve_tv.append(game.tv(game.answer_distribution(model), alpha))

        def on_train_begin(self, args, state, control, model=None, **kw):
            self._record(0, model)

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % cfg.eval_every == 0 or state.global_step == state.max_steps:
                self._record(state.global_step, model)

    with tempfile.TemporaryDirectory(prefix="aqpgen-grpo-") as out_dir:
        args = GRPOConfig(
            output_dir=out_dir, per_device_train_batch_size=P * cfg.K, num_generations=cfg.K,
            max_completion_length=1, max_steps=cfg.steps, learning_rate=cfg.lr,
            scale_rewards=cfg.scale_rewards, beta=0.0, temperature=1.0, seed=cfg.seed,
            shuffle_dataset=False, gradient_checkpointing=False, bf16=False,
            use_cpu=not torch.cuda.is_available(), report_to=[], save_strategy="no",
            logging_steps=10 ** 9, disable_tqdm=True, dataloader_num_workers=0, **cfg.extra)
        trainer = GRPOTrainer(model=game.build_model(cfg.seed), processing_class=game.build_tokenizer(),
                              reward_funcs=[game_reward, answer_term], args=args,
                              train_dataset=dataset, callbacks=[Monitor()])
        trainer.remove_callback(PrinterCallback)  # the end-of-training metrics dump
        holder["trainer"] = trainer
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    rec = {"config": asdict(cfg), "steps": curve_steps, "tv": curve_tv, "final_tv": curve_tv[-1],
           "metrics": _row_metrics(table, cfg.K), "seconds": seconds}
    if cfg.record_samples:
        rec["samples"] = samples
    return rec
