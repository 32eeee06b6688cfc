"""Tests for aqpgen.integrations with faked TRL inputs (and TRL itself when installed)."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

from aqpgen import integrations, runtime
from aqpgen.records import KResult
from aqpgen.store.tablefile import make_table, write_table

KS = (2, 3, 4, 8)


def _c(K: int, n: int) -> float:
    """The test table's entries: c_K[n] = 10K + n (distinct, so every lookup is identifiable)."""
    return 10.0 * K + n


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rows = [KResult(K=K, values=np.array([_c(K, n) for n in range(1, K + 1)])) for K in KS]
    td = make_table(name="toy-tab", family="power", target="test", method="ustat", params={},
                    provenance={}, results=rows)
    path = tmp_path_factory.mktemp("integ") / "toy-tab.h5"
    write_table(path, td)
    return runtime.load_table(path)


def _extract(text):
    m = re.search(r"answer:\s*(\w+)", text)
    return m.group(1) if m else None


# ------------------------------------------------------------------------ group_rewards
def test_group_rewards_strings(table):
    r = integrations.group_rewards(["a", "b", "a", "a"], table)
    assert r.tolist() == [_c(4, 3), _c(4, 1), _c(4, 3), _c(4, 3)]
    assert integrations.group_rewards([5, 5], table, K=2).tolist() == [_c(2, 2)] * 2
    with pytest.raises(ValueError, match="K=3 but the group has 4 answers"):
        integrations.group_rewards(["a"] * 4, table, K=3)
    with pytest.raises(ValueError, match="K=5 is not in table"):
        integrations.group_rewards(["a"] * 5, table)
    with pytest.raises(ValueError, match="at least one answer"):
        integrations.group_rewards([], table)


def test_group_rewards_by_path(table):
    r = integrations.group_rewards(["x", "x"], str(table.path))
    assert r.tolist() == [_c(2, 2)] * 2
    with pytest.raises(TypeError, match="table must be"):
        integrations.group_rewards(["x"], 3)


def test_none_policy(table):
    # each None is its own unique answer
    r = integrations.group_rewards([None, None, "a", "a"], table)
    assert r.tolist() == [_c(4, 1), _c(4, 1), _c(4, 2), _c(4, 2)]
    with pytest.raises(ValueError, match=r"answers\[1\] is None"):
        integrations.group_rewards(["a", None, "a"], table, on_none="raise")
    with pytest.raises(ValueError, match="on_none"):
        integrations.group_rewards(["a"], table, on_none="pool")


def test_group_rewards_numpy_batch(table):
    ids = np.array([[1, 1, 2, 3], [7, 7, 7, 7], [0, 1, 2, 3]])
    r = integrations.group_rewards(ids, table)
    assert r.shape == (3, 4) and r.dtype == np.float64
    assert r.tolist() == [[_c(4, 2), _c(4, 2), _c(4, 1), _c(4, 1)], [_c(4, 4)] * 4, [_c(4, 1)] * 4]


def test_group_rewards_torch(table):
    torch = pytest.importorskip("torch")
    ids = torch.tensor([[1, 1, 2], [4, 5, 4]], dtype=torch.int32)
    r = integrations.group_rewards(ids, table)
    assert isinstance(r, torch.Tensor) and r.device == ids.device and r.dtype == torch.float64
    assert r.tolist() == [[_c(3, 2), _c(3, 2), _c(3, 1)], [_c(3, 2), _c(3, 1), _c(3, 2)]]
    r32 = integrations.group_rewards(ids[0], table, dtype=torch.float32)
    assert r32.dtype == torch.float32 and r32.shape == (3,)


def test_group_rewards_jax(table):
    pytest.importorskip("jax")
    import jax.numpy as jnp

    r = integrations.group_rewards(jnp.array([[1, 1, 2]]), table)
    np.testing.assert_allclose(np.asarray(r), [[_c(3, 2), _c(3, 2), _c(3, 1)]])


# ------------------------------------------------------------------------ TRL reward function
def _batch(groups, conversational=False):
    """Fake TRL inputs: each prompt repeated len(group) times, consecutively."""
    prompts, completions = [], []
    for g, texts in enumerate(groups):
        for text in texts:
            if conversational:
                prompts.append([{"role": "user", "content": f"question {g}"}])
                completions.append([{"role": "assistant", "content": text}])
            else:
                prompts.append(f"question {g}")
                completions.append(text)
    return prompts, completions


GROUPS = [["so answer: 4", "answer: 4", "answer: 5", "no idea"],
          ["answer: x", "answer: x", "answer: x", "answer: x"]]
EXPECTED = [_c(4, 2), _c(4, 2), _c(4, 1), _c(4, 1)] + [_c(4, 4)] * 4


@pytest.mark.parametrize("conversational", [False, True])
def test_trl_reward_func(table, conversational):
    f = integrations.trl_reward_func(_extract, table, num_generations=4)
    prompts, completions = _batch(GROUPS, conversational)
    out = f(prompts=prompts, completions=completions, trainer_state=None, answer=["4"] * 8)
    assert out == EXPECTED and all(type(x) is float for x in out)
    assert f.__name__ == "aqpgen_toy_tab"
    assert list(inspect.signature(f).parameters) == ["prompts", "completions", "kwargs"]


def test_trl_reward_func_scale_and_name(table):
    f = integrations.trl_reward_func(_extract, table, 4, scale=0.5, name="entropy_reward")
    assert f.__name__ == "entropy_reward"
    assert f(*_batch(GROUPS)) == [0.5 * x for x in EXPECTED]


def test_trl_incomplete_group(table):
    f = integrations.trl_reward_func(_extract, table, 4)
    prompts, completions = _batch(GROUPS)
    with pytest.raises(ValueError, match=r"6 completions, not a multiple of num_generations=4.*"
                                         r"per_device_train_batch_size"):
        f(prompts[:6], completions[:6])
    # a misaligned slice of the right length is caught by the prompt check
    with pytest.raises(ValueError, match="prompt 2 differs from prompt 0"):
        f(prompts[2:6] + prompts[:4], completions[2:6] + completions[:4])


def test_trl_factory_errors(table):
    with pytest.raises(ValueError, match="K=5 is not in table"):
        integrations.trl_reward_func(_extract, table, 5)
    with pytest.raises(ValueError, match="num_generations"):
        integrations.trl_reward_func(_extract, table, 0)
    with pytest.raises(TypeError, match="callable"):
        integrations.trl_reward_func("x", table, 4)
    f = integrations.trl_reward_func(_extract, table, 2, on_none="raise")
    with pytest.raises(ValueError, match="is None"):
        f(["q", "q"], ["answer: 1", "nothing"])
    f = integrations.trl_reward_func(_extract, table, 2)
    with pytest.raises(TypeError, match="completion must be"):
        f(["q", "q"], [1, 2])


def test_against_trl_if_installed(table):
    trl = pytest.importorskip("trl")
    from trl import GRPOConfig  # noqa: F401  (the public entry point exists)

    f = integrations.trl_reward_func(_extract, table, 4)
    # TRL calls reward functions as reward_func(prompts=..., completions=..., **reward_kwargs)
    out = f(prompts=_batch(GROUPS)[0], completions=_batch(GROUPS)[1], completion_ids=None,
            trainer_state=None)
    assert out == EXPECTED
    assert hasattr(trl, "GRPOTrainer")
