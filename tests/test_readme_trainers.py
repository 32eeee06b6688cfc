"""docs/readme/trainers.md ("Use with TRL / verl / OpenRLHF"): its code blocks are executed
verbatim, so they cannot rot.  The namespace supplies what the snippets take as given (a model,
tokenizer and dataset for TRL; ``first_word``; OpenRLHF's per-prompt coroutine, a stand-in since
vLLM is not installable here).  Each block is skipped only when its framework is not installed.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "readme" / "trainers.md"


def blocks() -> dict:
    text = DOC.read_text()
    code = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    named = {}
    for c in code:
        key = ("trl_async" if "trl_async_reward_func" in c else "trl" if "from trl" in c
               else "verl" if "integrations.verl" in c else "openrlhf")
        assert key not in named, f"two {key} blocks: give the new one its own key and test"
        named[key] = c
    assert set(named) == {"trl", "trl_async", "openrlhf"}, list(named)  # verl: docs/readme/verl.md, tests/test_verl.py
    return named


def snippet_table(code: str) -> str:
    """The table name a snippet passes (its one quoted ``kl-...`` string)."""
    names = set(re.findall(r'"(kl-[a-z0-9.-]+)"', code))
    assert len(names) == 1, names
    return names.pop()


def test_snippets_use_the_recommended_table():
    """The three snippets name one table, and it is what ``aqpgen recommend`` chooses at the
    snippets' K (num_generations = n = 4) for the float32 rewards the trainers store."""
    from aqpgen.recommend import recommend

    code = blocks()
    named = {snippet_table(c) for c in code.values()}
    assert len(named) == 1, named
    assert "num_generations=4" in code["trl"]
    assert recommend(4).name == named.pop()


def test_doc_has_the_three_sections():
    text = DOC.read_text()
    assert text.startswith("## Use with TRL / verl / OpenRLHF")
    for word in ("**TRL**", "**OpenRLHF**", "allow_imprecise=True", "gather=True",
                 'uneven="serve"', "`failed=`", '"exclude"', "drop_truncated=True"):
        assert word in text


def test_trl_snippet_runs_a_real_trainer(monkeypatch, tmp_path):
    trl = pytest.importorskip("trl")
    pytest.importorskip("torch")
    import _trl_harness as h
    from datasets import Dataset

    real = trl.GRPOConfig

    def small_config(**kw):  # the snippet's settings + what a 1-step CPU test needs
        kw.update(output_dir=str(tmp_path / "out"), max_steps=1, max_completion_length=3,
                  use_cpu=True, report_to=[], save_strategy="no", beta=0.0, temperature=0.3,
                  disable_tqdm=True)
        return real(**kw)

    monkeypatch.setattr(trl, "GRPOConfig", small_config)
    ns = {"model": h.build_model(), "tokenizer": h.build_tokenizer(),
          "dataset": Dataset.from_dict({"prompt": ["what is the question alpha"] * 4})}
    exec(blocks()["trl"], ns)  # noqa: S102 - our own documentation snippet
    out = ns["trainer"].train()
    assert out.global_step == 1
    logged = [k for rec in ns["trainer"].state.log_history for k in rec]
    table = snippet_table(blocks()["trl"])
    assert f"rewards/aqpgen_{table.replace('-', '_')}/mean" in logged



def test_openrlhf_snippet():
    pytest.importorskip("openrlhf")
    pytest.importorskip("aiohttp")
    import _trl_harness as h
    from openrlhf.utils.agent import SingleTurnAgentExecutor
    from test_openrlhf import StubActor, StubEngine, _expected

    texts = ["alpha", "beta is", "alpha the", ""]
    tok = h.build_tokenizer()
    actor = StubActor(SingleTurnAgentExecutor(), StubEngine(tok, texts))
    ns = {"first_word": h.first_word, "generate_responses": StubActor.generate_responses}
    exec(blocks()["openrlhf"], ns)  # noqa: S102
    responses = asyncio.run(ns["generate_responses"](
        actor, "what is the question alpha", "alpha", SimpleNamespace(max_tokens=4, logprobs=None),
        32, tok, num_samples=4))
    want = _expected([h.first_word(t) for t in texts], 4, table=snippet_table(blocks()["openrlhf"]))
    assert [r["reward"] for r in responses] == want


def test_trl_async_snippet():
    """The async snippet's reward scores a group through TRL's own async rollout loop
    (``_score_group``; tests/test_trl_real.py builds it: the worker itself needs vLLM)."""
    pytest.importorskip("trl")
    pytest.importorskip("aiohttp")
    import _trl_harness as h
    from test_trl_real import ASYNC_TEXTS, _async_loop, _score

    from aqpgen.store.locate import find_table

    ns = {"first_word": h.first_word}  # a module-level extractor: the reward must pickle
    exec(blocks()["trl_async"], ns)  # noqa: S102
    samples = _score(_async_loop(ns["reward"], 4), ASYNC_TEXTS[:4])  # alpha, beta, None, alpha
    path = find_table(snippet_table(blocks()["trl_async"]))
    c3 = h.read_table_row(path, 3)  # failed="exclude": the 3 answers left use the K' = 3 row
    got = [s.metrics["reward"] for s in samples]
    assert got[0] == got[3] == c3[1] and got[1] == c3[0] and got[2] != got[2]
