"""A real TRL GRPOTrainer run on CPU with a tiny locally built model (no hub access).

Used by tests/test_trl_real.py, in-process and as the script of ``accelerate launch`` for the
2-process case.  ``run(cfg)`` trains a few steps and returns what TRL itself computed: for every
call of ``GRPOTrainer._calculate_rewards`` (the rewards TRL turns into advantages), the mode,
this process's dataset row ids and completion texts, and the returned (gathered, float32) reward
tensor.  ``check(records, table_path, ...)`` recomputes every reward independently: answers are
re-extracted from the completion texts, grouped by dataset row (not by layout), recounted with
``collections.Counter``, and c_K[n] is read from the table file with h5py directly.

Script use: ``python tests/_trl_harness.py CONFIG.json OUT_PREFIX`` (writes OUT_PREFIX.<rank>.json).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

WORDS = ["alpha", "beta", "gamma", "delta", "what", "is", "the", "answer", "to", "question"]
SPECIAL = ["<pad>", "<eos>", "<unk>"]


def first_word(text):
    """The answer of a completion: its first word, or None for an empty completion."""
    parts = text.split()
    return parts[0] if parts else None


def build_tokenizer():
    """A word-level tokenizer over WORDS (decoding joins words with spaces), with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                     unk_token="<unk>")
    hf_tok.chat_template = ("{% for m in messages %}{{ m['content'] }} {% endfor %}"
                            "{% if add_generation_prompt %}answer {% endif %}")
    return hf_tok


def build_model(seed: int = 0):
    """A tiny randomly initialised Qwen2 causal LM (same seed -> same weights on every process)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=len(SPECIAL) + len(WORDS), hidden_size=16, intermediate_size=32,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=64, tie_word_embeddings=True, pad_token_id=0,
                      eos_token_id=1, bos_token_id=None)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 1
    return model


def make_dataset(n_rows: int, *, conversational: bool = False, duplicate_prompts: bool = False):
    """Rows ``what is the question <word>``; with ``duplicate_prompts`` all rows share one text."""
    from datasets import Dataset

    from aqpgen.integrations import add_row_ids

    texts = [f"what is the question {WORDS[0 if duplicate_prompts else i % 4]}"
             for i in range(n_rows)]
    prompts = ([[{"role": "user", "content": t}] for t in texts] if conversational else texts)
    return add_row_ids(Dataset.from_dict({"prompt": prompts}))


def run(cfg: dict) -> list[dict]:
    """Train (and evaluate) per ``cfg``; return the reward records of this process."""
    from trl import GRPOConfig, GRPOTrainer

    from aqpgen.integrations import trl_reward_func

    records: list[dict] = []

    class RecordingTrainer(GRPOTrainer):
        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            out = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
            records.append({"mode": "train" if self.model.training else "eval",
                            "rank": self.accelerator.process_index,
                            "world": self.accelerator.num_processes,
                            "rows": [int(x["aqpgen_row"]) for x in inputs],
                            "completions": texts,
                            "completion_ids": [[int(t) for t in ids] for ids in completion_ids_list],
                            "rewards": out[:, 0].cpu().tolist()})
            return out

    model = build_model(cfg.get("model_seed", 0))
    tok = build_tokenizer()
    ds = make_dataset(cfg.get("n_rows", 16), conversational=cfg.get("conversational", False),
                      duplicate_prompts=cfg.get("duplicate_prompts", False))
    kw = {"output_dir": cfg["output_dir"], "per_device_train_batch_size": cfg.get("batch", 4),
          "num_generations": cfg["G"], "max_completion_length": cfg.get("max_completion_length", 3),
          "max_steps": cfg.get("steps", 2), "learning_rate": 1e-2, "logging_steps": 1,
          "report_to": [], "save_strategy": "no", "use_cpu": True, "bf16": False,
          "seed": cfg.get("seed", 0), "beta": 0.0, "temperature": 1.0,
          "dataloader_num_workers": 0, "disable_tqdm": True}
    kw.update(cfg.get("extra", {}))
    eval_ds = None
    if cfg.get("G_eval"):
        kw.update(num_generations_eval=cfg["G_eval"], eval_strategy="steps", eval_steps=1,
                  per_device_eval_batch_size=cfg.get("eval_batch", cfg["G_eval"]))
        eval_ds = make_dataset(cfg.get("n_eval_rows", 4))
    reward = trl_reward_func(first_word, cfg["table"], **cfg.get("factory", {}))
    trainer = RecordingTrainer(model=model, reward_funcs=[reward], args=GRPOConfig(**kw),
                               train_dataset=ds, eval_dataset=eval_ds, processing_class=tok)
    trainer.train()
    return records


def read_table_row(path: str | Path, K: int) -> np.ndarray:
    """c_K[1..K] read from the table file with h5py directly (independent of aqpgen)."""
    import h5py

    with h5py.File(path, "r") as f:
        Ks = f["K"][()].tolist()
        i = Ks.index(K)
        off = f["offsets"][()]
        return f["values"][off[i]: off[i + 1]].astype(np.float64)


def recount(answers, rows, K: int) -> list[int]:
    """n of every sample, recounted: how many samples of its group (same ``rows`` key; every
    group must hold exactly K) share its answer; a None answer counts 1."""
    groups: dict = {}
    for i, row in enumerate(rows):
        groups.setdefault(row, []).append(i)
    n = [0] * len(answers)
    for row, idx in groups.items():
        if len(idx) != K:
            raise AssertionError(f"row {row} has {len(idx)} completions, K={K}")
        freq = Counter(answers[i] for i in idx if answers[i] is not None)
        for i in idx:
            n[i] = 1 if answers[i] is None else freq[answers[i]]
    return n


def expected_rewards(answers, rows, K: int, table_path, scale: float = 1.0,
                     float32: bool = True) -> list[float]:
    """scale * c_K[n] of every sample (``recount``; c_K read with h5py), rounded to float32 as
    the trainers store rewards unless ``float32=False``."""
    c = read_table_row(table_path, K)
    want = [scale * c[n - 1] for n in recount(answers, rows, K)]
    return [float(np.float32(w)) for w in want] if float32 else want


def check_dropped(records: list[dict], table_path, K: int, max_len: int, eos_id: int = 1,
                  pad_id: int = 0) -> dict:
    """Assert the rewards of ``trl_reward_func(drop_truncated=True, uneven="serve")``: a
    completion that used all ``max_len`` tokens without ending in EOS (or the pad token, which
    TRL's ``mask_truncated_completions`` also counts as an end) gets NaN; the others of its
    row get float32(c_K'[n]), K' = the row's completions that ended, n recounted with Counter
    among them, c_K' read with h5py.  Returns the K' seen (row sizes after dropping)."""
    sizes = Counter()
    for k, rec in enumerate(records):
        groups: dict = {}
        for i, row in enumerate(rec["rows"]):
            groups.setdefault(row, []).append(i)
        for row, idx in groups.items():
            assert len(idx) == K, f"call {k}: row {row} has {len(idx)} completions, K={K}"
            cut = {i for i in idx if len(rec["completion_ids"][i]) == max_len
                   and rec["completion_ids"][i][-1] not in (eos_id, pad_id)}
            ended = [i for i in idx if i not in cut]
            sizes[len(ended)] += 1
            freq = Counter(first_word(rec["completions"][i]) for i in ended)
            c = read_table_row(table_path, len(ended)) if len(ended) >= 2 else None
            for i in idx:
                got = rec["rewards"][i]
                if i in cut:
                    assert got != got, f"call {k}, completion {i}: truncated but reward {got!r}"
                    continue
                a = first_word(rec["completions"][i])
                want = float(np.float32(c[(1 if a is None else freq[a]) - 1]))
                assert got == want, (f"call {k}, completion {i} (row {row}, K'={len(ended)}): "
                                     f"TRL used {got!r}, expected {want!r}")
    return dict(sizes)


def merge_ranks(per_rank: list[list[dict]]) -> list[dict]:
    """Join the records of all processes call by call: rows / completions in process order (the
    order TRL gathers rewards in); the gathered rewards must agree on every process."""
    merged = []
    for calls in zip(*per_rank):
        r0 = calls[0]
        for c in calls[1:]:
            if c["rewards"] != r0["rewards"] or c["mode"] != r0["mode"]:
                raise AssertionError("processes disagree on the gathered rewards of one call")
        merged.append({"mode": r0["mode"], "rows": [x for c in calls for x in c["rows"]],
                       "completions": [x for c in calls for x in c["completions"]],
                       "rewards": r0["rewards"]})
    return merged


def check(records: list[dict], table_path, G: dict, scale: float = 1.0) -> dict:
    """Assert every reward TRL used equals float32(scale * c_K[n]) recomputed independently.

    ``G`` maps mode ("train" / "eval") to the group size.  Returns statistics (calls, rewards
    checked, distinct counts seen).  Raises AssertionError naming the first mismatch."""
    rows_cache: dict = {}
    n_checked, counts_seen = 0, Counter()
    for k, rec in enumerate(records):
        K = G[rec["mode"]]
        if K not in rows_cache:
            rows_cache[K] = read_table_row(table_path, K)
        c = rows_cache[K]
        answers = [first_word(t) for t in rec["completions"]]
        if len(answers) != len(rec["rewards"]):
            raise AssertionError(f"call {k}: {len(answers)} completions, {len(rec['rewards'])} rewards")
        try:
            ns = recount(answers, rec["rows"], K)
        except AssertionError as exc:
            raise AssertionError(f"call {k} ({rec['mode']}): {exc}") from None
        for i, (row, n) in enumerate(zip(rec["rows"], ns)):
            want = float(np.float32(scale * c[n - 1]))
            if rec["rewards"][i] != want:
                raise AssertionError(
                    f"call {k} ({rec['mode']}), completion {i} (row {row}, answer "
                    f"{answers[i]!r}, n={n}, K={K}): TRL used {rec['rewards'][i]!r}, "
                    f"expected c_K[n] = {want!r}")
            n_checked += 1
            counts_seen[(K, n)] += 1
    return {"calls": len(records), "checked": n_checked, "counts": dict(counts_seen)}


if __name__ == "__main__":  # accelerate launch tests/_trl_harness.py CONFIG.json OUT_PREFIX
    cfg = json.loads(Path(sys.argv[1]).read_text())
    recs = run(cfg)
    rank = recs[0]["rank"] if recs else 0
    Path(f"{sys.argv[2]}.{rank}.json").write_text(json.dumps(recs))
    # end the gloo process group before the interpreter exits: left to teardown, its threads were
    # once killed mid-flight ("terminate called without an active exception", SIGABRT in rank 0
    # after both ranks had trained), failing a run whose rewards were right
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
