"""verl 0.9: table rewards computed where verl sees whole groups (the advantage step, by ``uid``).

Public names
------------
AqpgenAnswerManager             -- verl Reward Loop manager (``reward.reward_manager.source=importlib``,
                                   ``name=AqpgenAnswerManager``, ``module.path=pkg://aqpgen.integrations.verl``):
                                   scores each sample with its *answer code* (:func:`answer_code`).
aqpgen_advantage(...)           -- the advantage estimator registered as ``"aqpgen"``
                                   (``algorithm.adv_estimator=aqpgen``, options ``+algorithm.aqpgen.*``).
register_verl_estimator()       -- register it with ``core_algos.register_adv_est`` (done when verl
                                   resolves the manager class; idempotent).
answer_code(answer)             -- an answer's code: an integer-valued float32 in [2^23, 2^24).
group_advantages(rewards, index, baseline) -- the estimator's baseline arithmetic, validated.
OPTIONS                         -- the ``algorithm.aqpgen`` keys and their defaults.
verl_batch_reward, register_verl_advantage -- retired (verl 0.9 cannot select the batch manager);
                                   they raise, naming the new path.

Why the table lookup happens in the advantage step (checked against verl 0.9.1)
------------------------------------------------------------------------------
verl 0.9 scores samples one at a time (``RewardManagerBase.run_single``), on batches split
across ``reward.num_workers`` Reward Loop workers (or as each rollout finishes, in the agent
loop): no reward manager sees a whole group.  The only step that does is the advantage
estimator: ``compute_advantage`` calls it with ``token_level_rewards`` (the managers'
``rm_scores``), ``response_mask`` and ``index = non_tensor_batch["uid"]`` (the group of
``rollout.n`` samples of one prompt), and nothing else -- neither the legacy nor the v1 trainer
passes ``reward_extra_info`` to a registered estimator.  So the manager writes each sample's
answer into its score: ``answer_code(answer)``, an integer in [2^23 + 1, 2^24) taken from a
BLAKE2b hash of the answer's canonical bytes (2^23 for a failed answer), exact in float32; the
estimator groups by uid, counts equal codes, looks up ``scale * c_K[n]``, subtracts a per-group
baseline and returns ``(advantages, returns)`` with ``returns`` = the table rewards (verl logs
them as ``critic/returns/*``; ``critic/score/*`` shows codes).  Two different answers of one
group share a code with probability at most D(D-1)/2 / (2^23 - 1) for D distinct answers
(28 / (2^23 - 1) at D = 8); their samples would then count as one answer.
``algorithm.use_kl_in_reward=True`` would add KL to the codes and is refused.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import numbers
from collections.abc import Sequence
from functools import lru_cache, partial

import numpy as np

from aqpgen.integrations.grouping import UNEVEN, finite_scale, rewards_of_groups, served_table
from aqpgen.runtime.table import FAILED, is_failed

__all__ = [
    "ESTIMATOR",
    "MANAGER",
    "OPTIONS",
    "answer_code",
    "aqpgen_advantage",
    "group_advantages",
    "register_verl_advantage",
    "register_verl_estimator",
    "verl_batch_reward",
]

ESTIMATOR = "aqpgen"
MANAGER = "AqpgenAnswerManager"
BASELINES = ("mean", "rloo", "none")
#: keys of ``algorithm.aqpgen`` (``+algorithm.aqpgen.<key>=...``) and their defaults (None: required)
OPTIONS = {"table": None, "K": None, "failed": "unique", "uneven": "refuse", "baseline": "mean",
           "scale": 1.0, "allow_imprecise": False}
FAILED_CODE = float(2 ** 23)
_CODES = 2 ** 23 - 1  # codes 2^23 + 1 ... 2^24 - 1
_RETIRED = ("{name} is retired: verl 0.9 selects reward managers from its Reward Loop only and "
            "scores one sample at a time, so a batch compute_score is never called.  Use "
            "reward.reward_manager.source=importlib reward.reward_manager.name=AqpgenAnswerManager "
            "reward.reward_manager.module.path=pkg://aqpgen.integrations.verl and "
            "algorithm.adv_estimator=aqpgen (see docs/readme/verl.md / the README's verl section).")


def verl_batch_reward(*args, **kwargs):
    """Retired: raises, naming the verl 0.9 path (see the module docstring)."""
    raise RuntimeError(_RETIRED.format(name="verl_batch_reward"))


def register_verl_advantage(*args, **kwargs):
    """Retired: raises, naming the verl 0.9 path (see the module docstring)."""
    raise RuntimeError(_RETIRED.format(name="register_verl_advantage"))


def _canonical(answer) -> bytes:
    """Bytes equal for equal answers: str, bytes, integers (numpy too), finite reals (1.0 == 1)
    and tuples of those."""
    if isinstance(answer, str):
        return b"s" + answer.encode("utf-8", "surrogatepass")
    if isinstance(answer, bytes):
        return b"b" + answer
    if isinstance(answer, tuple):
        return b"t" + b"".join(len(c).to_bytes(4, "big") + c for c in map(_canonical, answer))
    if isinstance(answer, numbers.Integral) and not isinstance(answer, bool):
        return b"n" + str(int(answer)).encode()
    if isinstance(answer, numbers.Real) and not isinstance(answer, bool) and math.isfinite(answer):
        x = float(answer)
        return b"n" + str(int(x)).encode() if x.is_integer() else b"f" + repr(x).encode()
    raise TypeError(f"an answer must be a str, bytes, int, finite float or a tuple of those (or None "
                    f"/ NaN for no answer), received {answer!r} of type {type(answer).__name__}")


def answer_code(answer) -> float:
    """The answer's code (a float, exact in float32): ``2^23`` for a failed answer (None / NaN),
    else ``2^23 + 1 + h mod (2^23 - 1)`` with h the BLAKE2b hash of its canonical bytes (equal
    answers, in any process, get equal codes)."""
    if is_failed(answer):
        return FAILED_CODE
    h = int.from_bytes(hashlib.blake2b(_canonical(answer), digest_size=8).digest(), "big")
    return float(2 ** 23 + 1 + h % _CODES)


def _wrap_extractor(extract, config):
    """verl's ``compute_score`` keyword call -> ``{"score": code, ...}`` for the naive manager.

    ``extract`` is what ``load_reward_manager`` passes: the user's function (wrapped by verl in a
    ``functools.partial``), or verl's default scorer when no custom function is configured."""
    custom = (config.reward.get("custom_reward_function") or {}) if config is not None else {}
    if extract is None or not custom.get("path"):
        raise ValueError("AqpgenAnswerManager needs your answer extractor: set "
                         "reward.custom_reward_function.path=<your file> and "
                         "reward.custom_reward_function.name=<function returning the answer or None>")
    raw = extract.args[0] if isinstance(extract, partial) and extract.args else extract
    if inspect.iscoroutinefunction(raw) or inspect.iscoroutinefunction(extract):
        raise ValueError(f"AqpgenAnswerManager: the answer extractor must be a plain function, "
                         f"received the coroutine function {raw!r}")

    def compute_score(**kwargs):
        code = answer_code(extract(**kwargs))
        return {"score": code, "aqpgen_answer_code": code, "aqpgen_failed": code == FAILED_CODE}

    return compute_score


def _manager_class():
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    class AqpgenAnswerManager(NaiveRewardManager):
        """verl's naive manager (decode, call ``compute_score`` with keyword arguments), scoring
        each sample with :func:`answer_code` of the answer your extractor returns."""

        def __init__(self, config, tokenizer, compute_score, **kwargs):
            super().__init__(config, tokenizer, compute_score, **kwargs)
            self.compute_score = _wrap_extractor(compute_score, config)
            self.is_async_reward_score = False

    AqpgenAnswerManager.__module__ = __name__
    AqpgenAnswerManager.__qualname__ = MANAGER
    return AqpgenAnswerManager


def __getattr__(name):
    # verl resolves the manager with getattr(module, "AqpgenAnswerManager"): build it (importing
    # verl only then) and register the estimator in the same process (the trainer's)
    if name == MANAGER:
        cls = globals().get("_manager_cls") or _manager_class()
        globals()["_manager_cls"] = cls
        register_verl_estimator()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_verl_estimator() -> None:
    """Register :func:`aqpgen_advantage` as verl's advantage estimator ``"aqpgen"``."""
    from verl.trainer.ppo import core_algos

    if core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR) is not aqpgen_advantage:
        core_algos.register_adv_est(ESTIMATOR)(aqpgen_advantage)


def _options(config) -> dict:
    """``algorithm.aqpgen`` read and checked; errors name the key and the value."""
    if config is not None and config.get("use_kl_in_reward", False):
        raise ValueError("algorithm.adv_estimator=aqpgen needs algorithm.use_kl_in_reward=False: the "
                         "scores are answer codes (use the actor's KL loss instead)")
    section = (config.get("aqpgen") if config is not None else None) or {}
    unknown = sorted(set(section) - set(OPTIONS))
    if unknown:
        raise ValueError(f"algorithm.aqpgen: unknown key(s) {unknown}; known: {sorted(OPTIONS)}")
    opt = {k: section.get(k, d) for k, d in OPTIONS.items()}
    for key in ("table", "K"):
        if opt[key] is None:
            raise ValueError(f"algorithm.adv_estimator=aqpgen needs +algorithm.aqpgen.{key}=... "
                             f"(e.g. +algorithm.aqpgen.K='${{actor_rollout_ref.rollout.n}}')")
    for key, allowed in (("failed", FAILED), ("uneven", UNEVEN), ("baseline", BASELINES)):
        if opt[key] not in allowed:
            raise ValueError(f"algorithm.aqpgen.{key} must be one of {allowed}, received {opt[key]!r}")
    opt["scale"] = finite_scale(opt["scale"], "algorithm.aqpgen.scale")
    if not isinstance(opt["allow_imprecise"], bool):
        raise ValueError(  # noqa: TRY004 (a config value, like the others)f"algorithm.aqpgen.allow_imprecise must be true or false, received "
                         f"{opt['allow_imprecise']!r}")
    opt["table"] = _table(str(opt["table"]), opt["K"], opt["allow_imprecise"])
    return opt


@lru_cache(maxsize=8)
def _table(name: str, K, allow_imprecise: bool):
    return served_table(name, K, "float32", setting="algorithm.aqpgen.K",
                        consumer="verl stores advantages as float32",
                        allow_imprecise=allow_imprecise)


def _answers_of(codes: np.ndarray) -> list:
    """Codes (float64 sums of ``token_level_rewards``) -> answers: the integer code, None if failed."""
    ok = np.isfinite(codes) & (codes == np.floor(codes)) & (codes >= FAILED_CODE) & (codes < 2 ** 24)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"algorithm.adv_estimator=aqpgen: sample {i} has the score {codes[i]!r}, not an answer "
            f"code in [2^23, 2^24): the rewards must come from reward.reward_manager.name="
            f"{MANAGER} (source=importlib, module.path=pkg://aqpgen.integrations.verl), with no "
            f"other term added ({int((~ok).sum())} of {len(codes)} samples)")
    return [None if c == FAILED_CODE else int(c) for c in codes.tolist()]


def _uid_groups(index, n: int) -> list[list[int]]:
    if index is None:
        raise ValueError("algorithm.adv_estimator=aqpgen needs the uid index "
                         "(non_tensor_batch['uid']): verl passed index=None")
    keys = list(index)
    if len(keys) != n:
        raise ValueError(f"index has {len(keys)} uids for {n} samples")
    members: dict = {}
    for i, k in enumerate(keys):
        members.setdefault(k, []).append(i)
    return list(members.values())


def aqpgen_advantage(token_level_rewards, response_mask, index=None, config=None, **kwargs):
    """verl advantage estimator ``"aqpgen"`` (called by ``compute_advantage`` with the keyword
    arguments of every registered estimator).

    ``token_level_rewards`` hold the answer codes of :class:`AqpgenAnswerManager`; samples are
    grouped by ``index`` (verl's uid; members need not be adjacent), each group's rewards are
    ``scale * c_K'[n]`` under ``algorithm.aqpgen.failed`` / ``uneven`` (K' = K unless the group
    is uneven or ``failed=exclude`` leaves samples out), and the advantage is the reward minus the
    group's baseline (``mean``, ``rloo`` or ``none``; no division by a standard deviation).  A
    sample ``failed=exclude`` leaves out gets advantage 0 and return 0 (no gradient).  Returns
    ``(advantages, returns)``, both (B, T) and masked by ``response_mask``; ``returns`` = rewards.
    """
    import torch

    opt = _options(config)
    if tuple(token_level_rewards.shape) != tuple(response_mask.shape):
        raise ValueError(f"token_level_rewards has shape {tuple(token_level_rewards.shape)} but "
                         f"response_mask has shape {tuple(response_mask.shape)}")
    with torch.no_grad():
        codes = token_level_rewards.detach().sum(dim=-1).double().cpu().numpy()
        answers = _answers_of(codes)
        groups = _uid_groups(index, len(answers))
        K = int(opt["K"])
        setting = f"algorithm.aqpgen.K={K}"
        for g in groups:
            if len(g) != K and opt["uneven"] == "refuse":
                raise ValueError(
                    f"uid {index[g[0]]!r} has {len(g)} samples but {setting}: uneven groups are "
                    f"refused by default (algorithm.aqpgen.uneven=refuse); set "
                    f"+algorithm.aqpgen.uneven=serve to score a group of K' samples with the "
                    f"K' row")
        rewards = np.array(rewards_of_groups(
            answers, groups, opt["table"], K, failed=opt["failed"], uneven=opt["uneven"],
            scale=opt["scale"], dtype="float32", allow_imprecise=opt["allow_imprecise"],
            setting=setting))
        adv = group_advantages(rewards, list(index), opt["baseline"])
        mask = response_mask.to(torch.float32)
        out_adv = torch.as_tensor(np.nan_to_num(adv, nan=0.0), dtype=torch.float32,
                                  device=mask.device).unsqueeze(-1) * mask
        out_ret = torch.as_tensor(np.nan_to_num(rewards, nan=0.0), dtype=torch.float32,
                                  device=mask.device).unsqueeze(-1) * mask
    return out_adv, out_ret


def _as_scores(rewards) -> np.ndarray:
    torch = __import__("sys").modules.get("torch")
    if torch is not None and isinstance(rewards, torch.Tensor):
        rewards = rewards.detach().cpu().numpy()
    a = np.asarray(rewards)
    if a.ndim != 1 or a.dtype.kind not in "iuf":
        raise TypeError(f"rewards must be a 1-d array of real numbers (integer or float), received "
                        f"shape {a.shape} dtype {a.dtype}")
    a = a.astype(np.float64)
    if np.isinf(a).any():
        raise ValueError(f"rewards must be finite or NaN (= left out), received "
                         f"{a[np.isinf(a)][0]!r} at sample {int(np.flatnonzero(np.isinf(a))[0])}")
    return a


def group_advantages(rewards, index: Sequence, baseline: str = "mean") -> np.ndarray:
    """``reward - baseline`` within groups of equal ``index`` (float64 numpy).

    ``rewards``: 1-d numpy or torch, integer or float (other dtypes refused); NaN marks a sample
    left out (its advantage is NaN and it does not enter its group's baseline).  ``baseline``:
    ``"mean"`` (the group mean), ``"rloo"`` (the mean of the other members; needs 2 or more),
    ``"none"``.  ``index`` must have one entry per reward."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, received {baseline!r}")
    r = _as_scores(rewards)
    keys = list(index)
    if len(keys) != len(r):
        raise ValueError(f"index has {len(keys)} entries for {len(r)} rewards")
    adv = np.full(len(r), np.nan)
    for g in _uid_groups(keys, len(r)):
        idx = np.array([i for i in g if not np.isnan(r[i])], dtype=int)
        if len(idx) == 0:
            continue
        s = r[idx]
        if baseline == "mean":
            adv[idx] = s - s.mean()
        elif baseline == "rloo":
            if len(idx) < 2:
                raise ValueError(f"baseline='rloo' needs 2 or more scored samples per group; "
                                 f"group {keys[g[0]]!r} has {len(idx)}")
            adv[idx] = s - (s.sum() - s) / (len(idx) - 1)
        else:
            adv[idx] = s
    return adv
