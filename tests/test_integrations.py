"""Tests for aqpgen.integrations (grouping, TRL reward function) with TRL-shaped inputs; the real
GRPOTrainer runs in tests/test_trl_real.py."""

from __future__ import annotations

import inspect
import re
from collections import Counter

import numpy as np
import pytest

from aqpgen import integrations, runtime
from aqpgen.records import KResult
from aqpgen.store.content import make_table
from aqpgen.store.tablefile import write_table

KS = (2, 3, 4, 5, 6, 7, 8)


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
    with pytest.raises(ValueError, match="a group of 4 answers where K=3: more than K"):
        integrations.group_rewards(["a"] * 4, table, K=3)
    with pytest.raises(ValueError, match="cannot score a group of 9: it has no row K=9; the "
                                         "nearest Ks it serves are 8"):
        integrations.group_rewards(["a"] * 9, table)
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
    with pytest.raises(ValueError, match=r"group sample \[1\] = None is a failed answer"):
        integrations.group_rewards(["a", None, "a"], table, failed="raise")
    with pytest.raises(ValueError, match="failed must be one of"):
        integrations.group_rewards(["a"], table, failed="drop")
    with pytest.raises(ValueError, match="uneven must be one of"):
        integrations.group_rewards(["a"], table, uneven="pad")


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
    with pytest.raises(ValueError, match=r"received 6 samples, not a multiple of the group size "
                                         r"K=4.*pass gather=True"):
        f(prompts[:6], completions[:6])
    # a misaligned slice of the right length is caught by the prompt check
    with pytest.raises(ValueError, match=r"samples 0\.\.3 should be one group of K=4 but their "
                                         r"prompt differs"):
        f(prompts[2:6] + prompts[:4], completions[2:6] + completions[:4])


class _Args:
    per_device_train_batch_size = 8
    steps_per_generation = 1
    per_device_eval_batch_size = 4


class _Model:
    training = True


class FakeTrainer:
    """The attributes of TRL 1.16's GRPOTrainer that trl_reward_func reads (the real trainer is
    exercised in tests/test_trl_real.py)."""

    def __init__(self, G, G_eval=None):
        self.num_generations, self.num_generations_eval = G, G_eval or G
        self.args, self.model = _Args(), _Model()

    def _log_metric(self, name, value):  # TRL passes this bound method as log_metric=
        pass


def _call(f, trainer, groups, **kw):
    prompts, completions = _batch(groups)
    return f(prompts=prompts, completions=completions, log_metric=trainer._log_metric, **kw)


def test_trl_K_from_trainer_train_and_eval(table):
    f = integrations.trl_reward_func(_extract, table)  # no num_generations: read from trainer
    tr = FakeTrainer(4, G_eval=2)
    assert _call(f, tr, GROUPS) == EXPECTED
    tr.model.training = False  # evaluation: groups of num_generations_eval = 2
    out = _call(f, tr, [["answer: 4", "answer: 4"], ["answer: 1", "answer: 2"]])
    assert out == [_c(2, 2)] * 2 + [_c(2, 1)] * 2
    tr.model.training = True
    with pytest.raises(ValueError, match="cannot tell the group size"):
        f(*_batch(GROUPS))  # neither a trainer nor num_generations


def test_trl_drift_trainer_8_factory_4(table):
    f = integrations.trl_reward_func(_extract, table, num_generations=4)
    with pytest.raises(ValueError, match=r"num_generations=4\) disagrees with the trainer's "
                                         r"GRPOConfig.num_generations=8.*Drop the num_generations"):
        _call(f, FakeTrainer(8), [GROUPS[0] + GROUPS[1]])
    # trainer 4 / factory 8 is refused the same way (it used to pool two rows)
    f8 = integrations.trl_reward_func(_extract, table, num_generations=8)
    with pytest.raises(ValueError, match="GRPOConfig.num_generations=4"):
        _call(f8, FakeTrainer(4), GROUPS)


def test_trl_eval_K_missing_from_table(table):
    f = integrations.trl_reward_func(_extract, table)
    tr = FakeTrainer(4, G_eval=9)
    tr.model.training = False
    with pytest.raises(ValueError, match=r"GRPOConfig.num_generations_eval=9: K=9 is not in table"):
        _call(f, tr, [["answer: 1"] * 9])


def test_trl_split_group_names_the_setting(table):
    f = integrations.trl_reward_func(_extract, table)
    prompts, completions = _batch(GROUPS)
    with pytest.raises(ValueError, match=r"GRPOConfig.num_generations=4, per_device_train_batch_size "
                                         r"\(8\) x steps_per_generation \(1\) must be a multiple of 4"):
        f(prompts[:6], completions[:6], log_metric=FakeTrainer(4)._log_metric)


def test_trl_duplicate_prompts_rows(table):
    """Two rows with the same prompt text are two groups (row ids), never pooled."""
    f = integrations.trl_reward_func(_extract, table)
    groups = [["answer: a", "answer: a", "answer: b", "answer: c"],
              ["answer: a", "answer: b", "answer: b", "answer: b"]]
    prompts = ["same prompt"] * 8
    completions = [t for g in groups for t in g]
    out = f(prompts, completions, aqpgen_row=[7] * 4 + [9] * 4, log_metric=FakeTrainer(4)._log_metric)
    assert out == [_c(4, 2), _c(4, 2), _c(4, 1), _c(4, 1), _c(4, 1), _c(4, 3), _c(4, 3), _c(4, 3)]
    with pytest.raises(ValueError, match=r"dataset column 'aqpgen_row' differs"):
        f(prompts, completions, aqpgen_row=[7, 7, 9, 9] * 2, log_metric=FakeTrainer(4)._log_metric)


def test_trl_refuses_tables_float32_breaks():
    t = runtime.load_table("kl-minimax")
    with pytest.raises(ValueError, match=r"row K=32 of table 'kl-minimax' served as float32.*"
                                         r"allow_imprecise=True.*TRL stores rewards as float32"):
        integrations.trl_reward_func(_extract, t, num_generations=32)
    f = integrations.trl_reward_func(_extract, t, num_generations=16)  # float32 keeps K=16
    assert len(f(["q"] * 16, ["answer: 1"] * 16)) == 16
    f = integrations.trl_reward_func(_extract, t)
    with pytest.raises(ValueError, match="GRPOConfig.num_generations=32"):
        _call(f, FakeTrainer(32), [["answer: 1"] * 32])
    f = integrations.trl_reward_func(_extract, t, num_generations=32, allow_imprecise=True)
    assert f(["q"] * 32, ["answer: 1"] * 32) == [float(t.values(32)[31])] * 32


def test_trl_factory_errors(table):
    with pytest.raises(ValueError, match="K=9 is not in table"):
        integrations.trl_reward_func(_extract, table, 9)
    with pytest.raises(ValueError, match="num_generations"):
        integrations.trl_reward_func(_extract, table, 0)
    with pytest.raises(TypeError, match="callable"):
        integrations.trl_reward_func("x", table, 4)
    f = integrations.trl_reward_func(_extract, table, 2, failed="raise")
    with pytest.raises(ValueError, match="None is a failed answer"):
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
    assert hasattr(trl, "GRPOTrainer")  # the real trainer: tests/test_trl_real.py


# ------------------------------------------------------------------------ failed / uneven / padding
# Oracle: a Counter recount of the group, the K' row from the closed form _c (c_K[n] = 10K + n).
NAN = float("nan")
GROUP8 = ["a", "a", "b", None, "a", None, "b", None]  # 8 answers, 3 failed


def _recount(answers, failed):
    """Expected rewards, recounted: failed answers unique (n=1), pooled (n=#failed) or left out
    (NaN, the rest scored with the K' row)."""
    ok = [a for a in answers if a is not None]
    freq = Counter(ok)
    n_failed = len(answers) - len(ok)
    K = len(ok) if failed == "exclude" else len(answers)
    out = []
    for a in answers:
        if a is None:
            out.append(NAN if failed == "exclude" else _c(K, 1 if failed == "unique" else n_failed))
        else:
            out.append(_c(K, freq[a]))
    return out


def _paths(group, fail_as):
    """The same group through every input path; failed answers written as ``fail_as``."""
    g = [fail_as() if a is None else a for a in group]
    ids = {"a": 1, "b": 2}
    id_row = [NAN if a is None else float(ids[a]) for a in group]
    obj = np.empty(len(g), dtype=object)
    for i, x in enumerate(g):
        obj[i] = x
    return {"list": lambda t, f: integrations.group_rewards(g, t, failed=f),
            "object array": lambda t, f: integrations.group_rewards(obj, t, failed=f),
            "2-d object batch": lambda t, f: integrations.group_rewards(obj[None, :], t, failed=f)[0],
            "2-d float id batch": lambda t, f: integrations.group_rewards(np.array([id_row]), t,
                                                                          failed=f)[0],
            "Table.rewards": lambda t, f: t.rewards(g, failed=f)}


@pytest.mark.parametrize("fail_as", [lambda: None, lambda: float("nan"), lambda: np.float32("nan")],
                         ids=["None", "nan", "np.float32 nan"])
@pytest.mark.parametrize("failed", ["unique", "pool", "exclude"])
def test_failed_policy_same_on_every_path(table, failed, fail_as):
    want = _recount(GROUP8, failed)
    for name, run in _paths(GROUP8, fail_as).items():
        got = run(table, failed)
        np.testing.assert_array_equal(got, want, err_msg=f"{name}, failed={failed}")


def test_failed_raise_and_all_failed(table):
    for run in _paths(GROUP8, lambda: None).values():
        with pytest.raises(ValueError, match="is a failed answer"):
            run(table, "raise")
    assert np.isnan(integrations.group_rewards([None] * 8, table, failed="exclude")).all()
    # the examples: every failed answer of a group counts alike, however it is written
    assert integrations.group_rewards([None] * 8, table).tolist() == [_c(8, 1)] * 8
    nan = float("nan")
    assert integrations.group_rewards([nan] * 8, table).tolist() == [_c(8, 1)] * 8
    assert table.rewards([None] * 8).tolist() == [_c(8, 1)] * 8
    batch = integrations.group_rewards(np.array([[None] * 8], dtype=object), table)
    assert batch.tolist() == [[_c(8, 1)] * 8]
    assert runtime.answers_to_counts([nan, float("nan")], failed="pool").tolist() == [2, 2]


def test_uneven_group_refused_or_served(table):
    seven = ["a", "a", "b", "c", "a", "b", "a"]
    with pytest.raises(ValueError, match=r"a group of 7 answers where K=8 \(K=8\)\.  Uneven groups "
                                         r"are refused by default.*uneven=\"serve\""):
        integrations.group_rewards(seven, table, K=8)
    got = integrations.group_rewards(seven, table, K=8, uneven="serve")
    freq = Counter(seven)
    assert got.tolist() == [_c(7, freq[a]) for a in seven]
    with pytest.raises(ValueError, match="a group of 9 answers where K=8: more than K"):
        integrations.group_rewards(["a"] * 9, table, K=8, uneven="serve")
    # np.int64 K is an int
    assert integrations.group_rewards(["a"] * 8, table, K=np.int64(8)).tolist() == [_c(8, 8)] * 8


def _padded_oracle(rows, present):
    """NaN at padded slots, c_K'[n] recounted over the real slots of each row."""
    out = []
    for row, keep in zip(rows, present):
        real = [a for a, k in zip(row, keep) if k]
        freq = Counter(real)
        out.append([_c(len(real), freq[a]) if k else NAN for a, k in zip(row, keep)])
    return out


def test_padded_and_masked_batches(table):
    ids = np.array([[1, 1, 2, -1, -1, -1, -1, -1], [3, 3, 3, 4, 4, 4, 4, -1], [5] * 8])
    present = ids != -1
    want = _padded_oracle(ids.tolist(), present.tolist())
    with pytest.raises(ValueError, match=r"a group of 3 answers where K=8 \(group 0 of the batch\)"):
        integrations.group_rewards(ids, table, pad_id=-1)
    runs = {"pad_id": dict(pad_id=-1), "mask": dict(mask=present),
            "mask 0/1": dict(mask=present.astype(np.int8))}
    for name, kw in runs.items():
        got = integrations.group_rewards(ids, table, uneven="serve", **kw)
        np.testing.assert_array_equal(got, want, err_msg=name)
    masked = np.ma.array(ids, mask=~present)
    np.testing.assert_array_equal(integrations.group_rewards(masked, table, uneven="serve"), want)
    # the padding value is never read as an answer: -1 padding, 0 padding, any value
    for pad in (0, 7, 99):
        other = np.where(present, ids, pad)
        got = integrations.group_rewards(other, table, uneven="serve", mask=present)
        np.testing.assert_array_equal(got, want)
        assert np.isnan(got[~present]).all() and np.isfinite(got[present]).all()


def test_padded_torch_batch(table):
    torch = pytest.importorskip("torch")
    ids = torch.tensor([[1, 1, 2, 0], [3, 3, 3, 3]])
    got = integrations.group_rewards(ids, table, mask=ids != 0, uneven="serve", dtype=torch.float32)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    want = _padded_oracle(ids.tolist(), (ids != 0).tolist())
    np.testing.assert_array_equal(got.numpy(), np.array(want, dtype=np.float32))
    fl = torch.tensor([[1.0, float("nan"), 1.0, 2.0]])  # a float tensor: NaN is a failed answer
    got = integrations.group_rewards(fl, table, failed="exclude")[0].tolist()
    assert got[0] == got[2] == _c(3, 2) and got[3] == _c(3, 1) and np.isnan(got[1])


def test_masked_arrays_refused_where_not_honoured(table):
    m = np.ma.array([1, 1, 2], mask=[0, 0, 1])
    with pytest.raises(TypeError, match="masked array"):
        runtime.answers_to_counts(m)
    with pytest.raises(TypeError, match="masked array"):
        table.lookup(np.ma.array([1, 2, 0], mask=[0, 0, 1]), 3)
    with pytest.raises(TypeError, match="masked array"):
        table.rewards(m)
    with pytest.raises(TypeError, match="mask must be boolean"):
        integrations.group_rewards(np.array([[1, 2]]), table, mask=np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="mask has shape"):
        integrations.group_rewards(np.array([[1, 2]]), table, mask=np.array([True, True, True]))
    with pytest.raises(ValueError, match="not both"):
        integrations.group_rewards(np.array([[1, 2]]), table, pad_id=0, mask=np.array([[1, 1]]))


def test_every_K_prime_served_or_refused():
    """A real table: every K' from 2 to 256 is served under uneven="serve"; above 256 a K' off
    the standard grid is refused naming the nearest served Ks; K' = 1 has no row."""
    t = runtime.load_table("kl-aqp-rho1")
    for Kp in range(2, 257):
        r = integrations.group_rewards(["x"] * Kp, t, K=256, uneven="serve")
        assert r.tolist() == [float(t.values(Kp)[Kp - 1])] * Kp
    with pytest.raises(ValueError, match=r"cannot score a group of 300: it has no row K=300; "
                                         r"the nearest Ks it serves are 256 and 320"):
        integrations.group_rewards(["x"] * 300, t, K=320, uneven="serve")
    with pytest.raises(ValueError, match=r"no row K=1; the nearest Ks it serves are 2"):
        integrations.group_rewards(["x"], t, K=8, uneven="serve")
    with pytest.raises(ValueError, match=r"7 of the group's 8 answers failed.*no row K=1"):
        integrations.group_rewards(["x"] + [None] * 7, t, failed="exclude")


# ------------------------------------------------------------------------ TRL: options and inputs
def test_trl_uneven_groups_by_row_runs(table):
    """A filtered batch: row 7 keeps 3 of its K=4 completions.  Refused by default naming
    uneven="serve"; served the K'=3 row with it (groups = runs of one row id)."""
    texts = ["answer: a", "answer: a", "answer: b", "answer: x", "answer: x", "answer: y", "answer: x"]
    rows = [7] * 3 + [9] * 4
    f = integrations.trl_reward_func(_extract, table, 4)
    with pytest.raises(ValueError, match=r"received 7 samples, not a multiple.*uneven=\"serve\""):
        f(["q"] * 7, texts, aqpgen_row=rows)
    g = integrations.trl_reward_func(_extract, table, 4, uneven="serve")
    assert g(["q"] * 7, texts, aqpgen_row=rows) == [_c(3, 2), _c(3, 2), _c(3, 1),
                                                    _c(4, 3), _c(4, 3), _c(4, 1), _c(4, 3)]


def test_trl_failed_exclude_gives_nan(table):
    f = integrations.trl_reward_func(_extract, table, 4, failed="exclude")
    out = f(*_batch([["answer: a", "nothing", "answer: a", "answer: b"]]))
    assert out[0] == out[2] == _c(3, 2) and out[3] == _c(3, 1) and np.isnan(out[1])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1", None, True])
def test_trl_scale_must_be_finite(table, bad):
    with pytest.raises((TypeError, ValueError), match="scale must be"):
        integrations.trl_reward_func(_extract, table, 4, scale=bad)


def test_trl_numpy_ints_and_lengths(table):
    f = integrations.trl_reward_func(_extract, table, np.int64(4), scale=np.float32(0.5))
    assert f(*_batch(GROUPS)) == [0.5 * x for x in EXPECTED]
    prompts, completions = _batch(GROUPS)
    with pytest.raises(ValueError, match="prompts has 7 entries for 8 completions"):
        f(prompts[:7], completions)
    with pytest.raises(ValueError, match="dataset column 'aqpgen_row' has 3 entries for 8"):
        f(prompts, completions, aqpgen_row=[0, 0, 0])
    with pytest.raises(ValueError, match="completion_ids has 2 entries for 8"):
        f(prompts, completions, completion_ids=[[1], [2]])
