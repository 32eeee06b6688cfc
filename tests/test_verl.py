"""aqpgen's verl path, run the way verl 0.9.1 runs it.

The config is verl's own Hydra trainer config (``verl/trainer/config/ppo_trainer.yaml``, composed
with hydra's compose API and resolved with ``OmegaConf.resolve`` as ``main_ppo`` does) plus the
overrides printed in the README's verl fragment (docs/readme/verl.md, extracted from its bash
block: the test cannot pass while the recipe fails), and the answer extractor is the fragment's
Python block, written to the file the overrides name.  verl's own code then does the work:
``resolve_reward_manager_cls`` / ``load_reward_manager`` (inside verl's ``RewardLoopWorker``, one
instance per worker, each scoring its chunk of a batch split as ``RewardLoopManager.
compute_rm_score`` splits it, or one sample at a time as the agent loop does),
``assemble_rm_scores``, ``core_algos.get_adv_estimator_fn`` and ``compute_advantage`` (verl's
function from ``ray_trainer.py``; its module imports GPU-side packages, so when they are missing
the function's source is compiled alone).  Not run: Ray actors, vLLM / SGLang rollouts.

Oracle: answers chosen here, grouped by uid, recounted with Counter under each failed-answer
policy, c_K read from the .h5 file with h5py, baseline = group mean of the scored samples.
Skipped when verl is not installed (``make test WITH_VERL=1``).
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("verl")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("hydra")

import _trl_harness as h  # tiny word-level tokenizer; c_K read with h5py
import verl
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
from verl.protocol import pad_dataproto_to_divisor
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.reward import resolve_reward_manager_cls

from aqpgen.integrations import grouping
from aqpgen.integrations import verl as av
from aqpgen.store.locate import find_table

ROOT = Path(__file__).resolve().parents[1]
FRAGMENT = ROOT / "docs" / "readme" / "verl.md"
ANSWERS = ["alpha", "beta", "gamma"]


# ----------------------------------------------------------------------------- the README recipe
def readme_recipe() -> tuple[list[str], str]:
    """(overrides, extractor source) exactly as docs/readme/verl.md prints them."""
    text = FRAGMENT.read_text()
    blocks = dict(re.findall(r"```(\w+)\n(.*?)```", text, re.DOTALL))
    tokens = shlex.split(blocks["bash"].replace("\\\n", " "), comments=True)
    start = tokens.index("verl.trainer.main_ppo") + 1
    overrides = [t for t in tokens[start:] if t != "$YOUR_OVERRIDES"]
    assert overrides and all("=" in t for t in overrides), overrides
    return overrides, blocks["python"]


def settings_of(overrides: list[str]) -> dict:
    return dict(o.split("=", 1) for o in overrides)


def test_readme_recipe_names_the_verl_09_keys():
    overrides, _ = readme_recipe()
    text = "\n".join(p.read_text() for p in (ROOT / "docs" / "readme").glob("*.md"))
    assert "reward_model.reward_manager=batch" not in text
    assert "BatchRewardManager" not in text and "verl_batch_reward" not in text
    assert f"verl {verl.__version__}" in FRAGMENT.read_text()  # the version checked is named
    assert "reward.reward_manager.source=importlib" in overrides
    from aqpgen.recommend import (
        recommend,  # the table aqpgen recommend names at the recipe's K
    )

    settings = settings_of(overrides)
    assert settings["actor_rollout_ref.rollout.n"] == "4"
    assert settings["+algorithm.aqpgen.table"] == recommend(4).name


@pytest.fixture(scope="module")
def tok():
    return h.build_tokenizer()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tok):
    """A directory holding the README's extractor file (under the name the overrides give) and
    the tokenizer verl loads from ``actor_rollout_ref.model.path``; verl resolves the relative
    extractor path from the working directory."""
    d = tmp_path_factory.mktemp("verl_user")
    overrides, source = readme_recipe()
    path = settings_of(overrides)["reward.custom_reward_function.path"]
    (d / path).write_text(source)
    (d / "nan_answers.py").write_text(
        "import math\n\ndef extract_answer(solution_str, **kwargs):\n"
        "    words = solution_str.split()\n    return words[0] if words else math.nan\n")
    tok.save_pretrained(d / "tokenizer")
    return d


def verl_config(workdir, *extra: str):
    """verl's ppo_trainer config + the README's overrides + ``extra`` (test environment)."""
    overrides, _ = readme_recipe()
    env = [f"actor_rollout_ref.model.path={workdir / 'tokenizer'}"]
    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose("ppo_trainer", overrides=[*overrides, *env, *extra])
    OmegaConf.resolve(cfg)  # as main_ppo's TaskRunner does
    return cfg


# ----------------------------------------------------------------------------- verl's functions
def verl_compute_advantage():
    """verl's ``compute_advantage`` (trainer/ppo/ray_trainer.py): imported when its module's
    dependencies are installed, else its own source compiled with the names it uses."""
    try:
        from verl.trainer.ppo.ray_trainer import compute_advantage
        return compute_advantage
    except ImportError:
        pass
    path = Path(verl.__file__).parent / "trainer" / "ppo" / "ray_trainer.py"
    fn = next(n for n in ast.parse(path.read_text()).body
              if isinstance(n, ast.FunctionDef) and n.name == "compute_advantage")
    from typing import Optional

    from verl.trainer.config import AlgoConfig

    ns = {"DataProto": DataProto, "core_algos": core_algos, "Optional": Optional,
          "AlgoConfig": AlgoConfig, "AdvantageEstimator": core_algos.AdvantageEstimator}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(path), "exec"), ns)  # noqa: S102
    return ns["compute_advantage"]


def score_split(cfg, data: DataProto, workdir, per_sample: bool = False) -> torch.Tensor:
    """rm_scores as verl's reward loop computes them: ``reward.num_workers`` RewardLoopWorkers,
    each with its own manager (``load_reward_manager``), scoring the chunks of the padded batch
    (``RewardLoopManager.compute_rm_score``); ``per_sample``: each sample on its own, as the agent
    loop scores a finished rollout."""
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        n_workers = cfg.reward.num_workers
        workers = [RewardLoopWorker(cfg) for _ in range(n_workers)]
        if per_sample:
            outputs = [loop.run_until_complete(workers[i % n_workers].compute_score(data[i:i + 1]))
                       for i in range(len(data))]
        else:
            padded, _ = pad_dataproto_to_divisor(data, n_workers)
            chunks = padded.chunk(n_workers)
            outputs = [o for w, c in zip(workers, chunks)
                       for o in loop.run_until_complete(w.compute_score_batch(c))][: len(data)]
        loop.close()
    finally:
        os.chdir(cwd)
    cls = resolve_reward_manager_cls(cfg)
    return cls.assemble_rm_scores(data, [o["reward_score"] for o in outputs])


def advantages(cfg, data: DataProto, rm_scores: torch.Tensor):
    """verl's trainer step: token_level_scores = rm_scores (no KL in reward) -> compute_advantage."""
    data.batch["token_level_scores"] = rm_scores
    data.batch["token_level_rewards"] = rm_scores
    out = verl_compute_advantage()(
        data, adv_estimator=cfg.algorithm.adv_estimator, gamma=cfg.algorithm.gamma,
        lam=cfg.algorithm.lam, num_repeat=cfg.actor_rollout_ref.rollout.n,
        norm_adv_by_std_in_grpo=cfg.algorithm.norm_adv_by_std_in_grpo, config=cfg.algorithm)
    return out.batch["advantages"], out.batch["returns"]


# ----------------------------------------------------------------------------- batches and oracle
def make_batch(tok, n_rows: int, n: int, seed: int, resp_len: int = 4, p_fail: float = 0.15):
    """A DataProto shaped like verl's after rollout: rows repeated n times (interleaved), one uid
    per prompt, all prompt texts equal (grouping by text would merge them), responses
    '<answer> is the' or empty (no answer), right-padded; then shuffled as _balance_batch does."""
    rng = np.random.default_rng(seed)
    prompt_ids = torch.tensor([tok.encode("what is the question alpha")] * n_rows)
    base = DataProto.from_dict(
        tensors={"prompts": prompt_ids},
        non_tensors={"data_source": np.array(["toy"] * n_rows, dtype=object),
                     "reward_model": np.array([{"ground_truth": "alpha"}] * n_rows, dtype=object),
                     "uid": np.array([str(uuid.uuid4()) for _ in range(n_rows)], dtype=object)})
    data = base.repeat(repeat_times=n, interleave=True)
    B = len(data)
    chosen = [None if rng.random() < p_fail else ANSWERS[rng.integers(0, 2 if i % 2 else 3)]
              for i in range(B)]
    resp = torch.zeros((B, resp_len), dtype=torch.long)
    P = prompt_ids.shape[1]
    mask = torch.zeros((B, P + resp_len), dtype=torch.long)
    mask[:, :P] = 1
    for i, a in enumerate(chosen):
        ids = tok.encode(f"{a} is the") if a is not None else tok.encode("<eos>")
        resp[i, : len(ids)] = torch.tensor(ids)
        mask[i, P: P + len(ids)] = 1
    data.batch["responses"] = resp
    data.batch["attention_mask"] = mask
    data.batch["response_mask"] = mask[:, P:]
    data.non_tensor_batch["extra_info"] = np.array([{} for _ in range(B)], dtype=object)
    perm = torch.tensor(rng.permutation(B))
    data.reorder(perm)
    return data, [chosen[i] for i in perm.tolist()]


def oracle(chosen, uids, table_path, K: int, failed: str = "unique", scale: float = 1.0):
    """(rewards, advantages) recounted per uid: failed answers (None) counted by the policy,
    c_K' read with h5py, advantage = reward - mean of the group's scored rewards; a sample
    failed="exclude" leaves out gets NaN reward and advantage 0."""
    groups: dict = {}
    for i, u in enumerate(uids):
        groups.setdefault(u, []).append(i)
    reward = np.full(len(chosen), np.nan)
    adv = np.zeros(len(chosen))
    for idx in groups.values():
        real = Counter(chosen[i] for i in idx if chosen[i] is not None)
        n_fail = sum(chosen[i] is None for i in idx)
        Kp = len(idx) - (n_fail if failed == "exclude" else 0)
        c = h.read_table_row(table_path, Kp) if Kp else None
        for i in idx:
            if chosen[i] is not None:
                reward[i] = scale * c[real[chosen[i]] - 1]
            elif failed != "exclude":
                reward[i] = scale * c[(n_fail if failed == "pool" else 1) - 1]
        scored = [i for i in idx if not np.isnan(reward[i])]
        for i in scored:
            adv[i] = reward[i] - np.mean([reward[j] for j in scored])
    return reward, adv


def assert_matches(adv, ret, data, chosen, table_path, K, failed="unique", scale=1.0):
    mask = data.batch["response_mask"].double().numpy()
    want_r, want_a = oracle(chosen, list(data.non_tensor_batch["uid"]), table_path, K, failed,
                            scale)
    np.testing.assert_allclose(adv.double().numpy(), want_a[:, None] * mask, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ret.double().numpy(), np.nan_to_num(want_r)[:, None] * mask,
                               rtol=0, atol=1e-6)


def table_of(cfg) -> str:
    return str(find_table(cfg.algorithm.aqpgen.table))


# ----------------------------------------------------------------------------- the tests
def test_recipe_resolves_through_verl(workdir):
    cfg = verl_config(workdir)
    cls = resolve_reward_manager_cls(cfg)
    assert cls.__name__ == "AqpgenAnswerManager" and cls.__module__ == "aqpgen.integrations.verl"
    assert core_algos.get_adv_estimator_fn(cfg.algorithm.adv_estimator) is av.aqpgen_advantage
    assert cfg.algorithm.aqpgen.K == cfg.actor_rollout_ref.rollout.n == 4


@pytest.mark.parametrize("per_sample", [False, True])
def test_split_batches_give_table_rewards(workdir, tok, per_sample):
    cfg = verl_config(workdir, "reward.num_workers=5")  # chunks of 3 split the groups of 4
    K = cfg.actor_rollout_ref.rollout.n
    data, chosen = make_batch(tok, n_rows=3, n=K, seed=11)
    adv, ret = advantages(cfg, data, score_split(cfg, data, workdir, per_sample))
    assert_matches(adv, ret, data, chosen, table_of(cfg), K)
    n_seen = {Counter(chosen[j] for j in range(len(data)) if data.non_tensor_batch["uid"][j] == u)
              .most_common(1)[0][1] for u in set(data.non_tensor_batch["uid"])}
    assert len(n_seen) >= 2 and any(a is None for a in chosen)  # the batch exercises counts
    # negative control: the same check on the answers of two samples of different uids swapped
    uid = data.non_tensor_batch["uid"]
    i, j = next((i, j) for i in range(len(data)) for j in range(len(data))
                if uid[i] != uid[j] and chosen[i] != chosen[j])
    wrong = list(chosen)
    wrong[i], wrong[j] = wrong[j], wrong[i]
    with pytest.raises(AssertionError):
        assert_matches(adv, ret, data, wrong, table_of(cfg), K)


@pytest.mark.parametrize("failed", ["unique", "pool", "exclude"])
@pytest.mark.parametrize("extractor", ["none", "nan"])
def test_failed_answers_follow_the_policy(workdir, tok, failed, extractor):
    extra = [f"+algorithm.aqpgen.failed={failed}", "+algorithm.aqpgen.scale=2.5",
             "reward.num_workers=3", "actor_rollout_ref.rollout.n=8"]
    if extractor == "nan":
        extra.append("reward.custom_reward_function.path=nan_answers.py")
    cfg = verl_config(workdir, *extra)
    K = cfg.actor_rollout_ref.rollout.n
    data, chosen = make_batch(tok, n_rows=2, n=K, seed=5, p_fail=0.4)
    adv, ret = advantages(cfg, data, score_split(cfg, data, workdir))
    assert_matches(adv, ret, data, chosen, table_of(cfg), K, failed, scale=2.5)
    # the same policy as group_rewards on the same groups
    uid = data.non_tensor_batch["uid"]
    for u in set(uid):
        idx = [i for i in range(len(data)) if uid[i] == u]
        answers = [chosen[i] if chosen[i] is not None else (None if extractor == "none" else np.nan)
                   for i in idx]
        want = grouping.group_rewards(answers, table_of(cfg), K, failed=failed)
        got = ret[idx, 0].double().numpy()  # every response has its first token
        np.testing.assert_allclose(got, 2.5 * np.nan_to_num(want), atol=1e-5)


def test_failed_raise(workdir, tok):
    cfg = verl_config(workdir, "+algorithm.aqpgen.failed=raise")
    data, chosen = make_batch(tok, n_rows=2, n=4, seed=2, p_fail=0.5)
    assert None in chosen
    with pytest.raises(ValueError, match="failed"):
        advantages(cfg, data, score_split(cfg, data, workdir))


def test_uneven_group_refused_then_served(workdir, tok):
    extra = ["actor_rollout_ref.rollout.n=8", "reward.num_workers=2"]
    cfg = verl_config(workdir, *extra)
    data, chosen = make_batch(tok, n_rows=2, n=8, seed=7, p_fail=0.0)
    drop = next(i for i in range(len(data)) if data.non_tensor_batch["uid"][i]
                == data.non_tensor_batch["uid"][0])
    keep = [i for i in range(len(data)) if i != drop]  # one group of 7 (filtered), one of 8
    data, chosen = data.select_idxs(keep), [chosen[i] for i in keep]
    scores = score_split(cfg, data, workdir)
    with pytest.raises(ValueError, match=r"has 7 samples but algorithm\.aqpgen\.K=8.*"
                                         r"\+algorithm\.aqpgen\.uneven=serve"):
        advantages(cfg, data, scores)
    cfg = verl_config(workdir, *extra, "+algorithm.aqpgen.uneven=serve")
    adv, ret = advantages(cfg, data, scores)
    assert_matches(adv, ret, data, chosen, table_of(cfg), 8)  # oracle: c_7 for the group of 7
    sizes = Counter(Counter(data.non_tensor_batch["uid"]).values())
    assert sizes == {7: 1, 8: 1}


def test_codes_are_the_same_in_every_process():
    answers = ["alpha", "", "ünï", 3, 3.0, 2.5, ("a", 1), b"x"]
    here = [av.answer_code(a) for a in answers]
    script = ("import sys, json; from aqpgen.integrations.verl import answer_code; "
              f"print(json.dumps([answer_code(a) for a in {answers!r}]))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert eval(out.stdout) == here
    assert here[3] == here[4] and len(set(here)) == len(here) - 1
    assert all(2 ** 23 < c < 2 ** 24 and c == int(c) and float(np.float32(c)) == c for c in here)
    assert av.answer_code(None) == av.answer_code(float("nan")) == av.answer_code(np.float32("nan"))
    with pytest.raises(TypeError, match=r"an answer must be .* received \[1\]"):
        av.answer_code([1])


def test_misconfiguration_is_named(workdir, tok):
    data, _ = make_batch(tok, n_rows=2, n=4, seed=3)
    cfg = verl_config(workdir)
    good = score_split(cfg, data, workdir)
    naive = (good != 0).float()  # what verl's naive manager would give: 0 / 1 scores
    with pytest.raises(ValueError, match=r"sample 0 has the score .* not an answer code.*"
                                         r"AqpgenAnswerManager"):
        advantages(cfg, data, naive)
    for extra, match in [(["algorithm.use_kl_in_reward=True"], "use_kl_in_reward=False"),
                         (["+algorithm.aqpgen.scale=nan"], r"algorithm.aqpgen.scale must be finite.*nan"),
                         (["+algorithm.aqpgen.uneven=pad"], r"uneven must be one of.*'pad'"),
                         (["+algorithm.aqpgen.tabel=x"], r"unknown key\(s\) \['tabel'\]"),
                         (["algorithm.aqpgen.K=5"], r"4 samples but algorithm.aqpgen.K=5"),
                         (["algorithm.aqpgen.table=kl-minimax", "algorithm.aqpgen.K=32"],
                          r"algorithm.aqpgen.K=32.*float32.*verl stores advantages as float32")]:
        cfg = verl_config(workdir, *extra)
        with pytest.raises(ValueError, match=match):
            advantages(cfg, data, good.clone())
    cfg = verl_config(workdir)
    with pytest.raises(ValueError, match=r"index has 7 uids for 8 samples"):
        av.aqpgen_advantage(good, data.batch["response_mask"], data.non_tensor_batch["uid"][:7],
                            cfg.algorithm)
    with pytest.raises(ValueError, match=r"token_level_rewards has shape \(8, 4\) but "
                                         r"response_mask has shape \(8, 3\)"):
        av.aqpgen_advantage(good, data.batch["response_mask"][:, :3], data.non_tensor_batch["uid"],
                            cfg.algorithm)
    from verl.trainer.ppo.reward import load_reward_manager

    bare = verl_config(workdir, "reward.custom_reward_function.path=null")  # verl's default scorer
    with pytest.raises(ValueError, match="needs your answer extractor.*custom_reward_function.path"):
        load_reward_manager(bare, tok)
    (workdir / "async_answers.py").write_text("async def extract_answer(solution_str, **kw):\n"
                                              "    return None\n")
    with pytest.raises(ValueError, match="plain function.*coroutine function <function extract_"):
        load_reward_manager(verl_config(workdir, "reward.custom_reward_function.path="
                                        f"{workdir / 'async_answers.py'}"), tok)


def test_group_advantages_validates():
    idx = ["a", "a", "b", "b"]
    np.testing.assert_array_equal(av.group_advantages(np.array([1, 3, 2, 2]), idx),
                                  [-1.0, 1.0, 0.0, 0.0])  # integer scores: not zeros
    np.testing.assert_array_equal(av.group_advantages(torch.tensor([1.0, 3.0, 5.0, 2.0]), idx,
                                                      "rloo"), [-2.0, 2.0, 3.0, -3.0])
    with pytest.raises(ValueError, match="index has 3 entries for 4 rewards"):
        av.group_advantages(np.ones(4), idx[:3])
    with pytest.raises(TypeError, match="dtype bool"):
        av.group_advantages(np.array([True, False, True, True]), idx)
    with pytest.raises(ValueError, match="finite or NaN.*inf"):
        av.group_advantages(np.array([1.0, np.inf, 0.0, 0.0]), idx)
    with pytest.raises(ValueError, match="baseline must be one of"):
        av.group_advantages(np.ones(4), idx, "std")


@pytest.mark.parametrize("name", ["verl_batch_reward", "register_verl_advantage"])
def test_batch_path_is_retired(name):
    from aqpgen import integrations

    with pytest.raises(RuntimeError, match=r"retired.*reward\.reward_manager\.name="
                                           r"AqpgenAnswerManager.*algorithm\.adv_estimator=aqpgen"):
        getattr(integrations, name)(h.first_word, "kl-aqp-rho1", n=4)
