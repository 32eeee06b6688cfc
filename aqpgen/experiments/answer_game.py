r"""The answer-level alignment game a real trainer plays: prompts, answers, rewards, the optimum,
and the policy's exact answer distribution read from the model's logits.

The game
--------
A prompt is one token (``q0``, ``q1``, ...).  A completion is **one generated token**
(``max_completion_length=1``); its *answer* is that token when it is one of the 16 answer tokens
``a0`` ... ``a15``, else the 17th class ``other`` (special tokens, prompt tokens).  Each prompt
plays one scenario of ``aqpgen.game.scenarios`` over these 17 classes (``grpo-head``: five
good answers and twelve wrong ones; ``grpo-tail``: rewards -1.1 tau ln z, a long tail), with
its own order of the answer tokens, so the model must condition on the prompt.  The objective of
a prompt is

.. math::  J(\pi) = \sum_z \pi(z) R_z + \tau H(\pi)            (KL game, α = 1)
           J(\pi) = \sum_z \pi(z) R_z - \tau \sum_z \varphi_\alpha(\pi(z))   (α-game, docs/MATH.md §2b)

with the known optimum ``Scenario.optimum(alpha)`` (softmax(R/τ) for α = 1).  Its policy
gradient is :math:`\mathbb{E}[\nabla\log\pi(z)\,(R_z - \tau\varphi'_\alpha(\pi(z)))]`, so a
completion with answer z is rewarded :math:`R_z - \tau\varphi'_\alpha(\pi(z))`; the trainer
only sees counts, and an estimator replaces :math:`\varphi'_\alpha(\pi(z)) = A g(\pi(z)) + B`
(g = log p or p^a, ``aqpgen.game.alpha.reward_affine``) by :math:`A c_K[n] + B`.

The exact answer distribution
-----------------------------
Sampling is TRL's: ``temperature=1``, ``top_p=1``, ``top_k=0`` (off), so the generated token
is drawn from softmax(logits) at the prompt's last position.  :func:`answer_distribution` runs
the model on every prompt once and sums the softmax (in float64) over the tokens of each class:
that *is* the policy's answer distribution, not an estimate.

Public names
------------
OTHER, SPECIAL_TOKENS, AnswerGame, PromptGame, default_game(), extract_answer(text)
AnswerGame.build_tokenizer(), AnswerGame.build_model(seed), AnswerGame.answer_distribution(model)
AnswerGame.tv(dists, alpha), AnswerGame.optimum(i, alpha)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aqpgen.game.scenarios import GRPO_ANSWERS, Scenario, get_scenario, tv_distance

__all__ = ["ANSWER_TOKENS", "OTHER", "SPECIAL_TOKENS", "AnswerGame", "PromptGame", "default_game",
           "extract_answer"]

#: Special tokens of the tokenizer (pad, eos, unk): generating one gives the answer ``other``.
SPECIAL_TOKENS = ("<pad>", "<eos>", "<unk>")
#: The answer tokens.
ANSWER_TOKENS = tuple(f"a{j}" for j in range(GRPO_ANSWERS))
#: The class of every completion that is not an answer token.
OTHER = "other"


def extract_answer(text) -> str:
    """The answer of a completion's text: the answer token it is, else ``OTHER``.

    Special tokens decode to "" (TRL decodes with ``skip_special_tokens=True``) and so do not
    match; nothing maps to ``None``, so every completion has an answer and the count of
    ``other`` is the number of unparseable completions in the group."""
    t = text.strip() if isinstance(text, str) else ""
    return t if t in _ANSWER_SET else OTHER


_ANSWER_SET = frozenset(ANSWER_TOKENS)


@dataclass(frozen=True)
class PromptGame:
    """One prompt and its game.

    Attributes
    ----------
    prompt : str
        The prompt token.
    scenario : Scenario
        Rewards of the 17 classes: ``R[j]`` for ``order[j]``, ``R[-1]`` for ``OTHER``.
    order : tuple of str
        The answer tokens in the scenario's order (a permutation of ``ANSWER_TOKENS``).
    """

    prompt: str
    scenario: Scenario
    order: tuple[str, ...]

    @property
    def classes(self) -> tuple[str, ...]:
        """The answer classes in scenario order: ``order`` then ``OTHER``."""
        return self.order + (OTHER,)

    def reward(self, answer: str) -> float:
        """R of an answer (``extract_answer``'s output)."""
        return float(self.scenario.R[self.classes.index(answer)])


class AnswerGame:
    """The prompts of the experiment, their tokenizer, model and exact answer distributions.

    Parameters
    ----------
    prompts : sequence of PromptGame
        All must share τ (one answer-level weight in the reward).
    hidden_size : int
        Width of the tiny Qwen2 (one layer, untied output embedding).
    """

    def __init__(self, prompts: Sequence[PromptGame], *, hidden_size: int = 32):
        prompts = tuple(prompts)
        if not prompts:
            raise ValueError("an AnswerGame needs at least one prompt")
        taus = {p.scenario.tau for p in prompts}
        if len(taus) != 1:
            raise ValueError(f"every prompt must share tau, received {sorted(taus)}")
        for p in prompts:
            if sorted(p.order) != sorted(ANSWER_TOKENS):
                raise ValueError(f"prompt {p.prompt!r}: order must be a permutation of the "
                                 f"{len(ANSWER_TOKENS)} answer tokens")
            if p.scenario.S != len(ANSWER_TOKENS) + 1:
                raise ValueError(f"prompt {p.prompt!r}: scenario {p.scenario.name!r} has "
                                 f"{p.scenario.S} answers, the game has {len(ANSWER_TOKENS) + 1}")
        names = [p.prompt for p in prompts]
        if len(set(names)) != len(names):
            raise ValueError(f"prompt tokens must be distinct, received {names}")
        self.prompts = prompts
        self.tau = float(taus.pop())
        self.hidden_size = int(hidden_size)
        self.vocab = {w: i for i, w in enumerate(SPECIAL_TOKENS + tuple(names) + ANSWER_TOKENS)}
        # token ids of each prompt's classes (the last class, OTHER, is every remaining token)
        self._class_ids = []
        for p in prompts:
            ids = [self.vocab[t] for t in p.order]
            self._class_ids.append(np.array(ids))

    #: tokens the trainer generates per completion
    completion_length = 1
    #: the answer of a completion's text (the module's ``extract_answer``)
    extract_answer = staticmethod(extract_answer)

    def __repr__(self) -> str:
        sc = ", ".join(f"{p.prompt}:{p.scenario.name}" for p in self.prompts)
        return f"AnswerGame({sc}, tau={self.tau})"

    def index(self, prompt: str) -> int:
        """Position of a prompt (its text) in ``prompts``."""
        for i, p in enumerate(self.prompts):
            if p.prompt == prompt:
                return i
        raise ValueError(f"unknown prompt {prompt!r}; the game's prompts are "
                         f"{[p.prompt for p in self.prompts]}")

    def optimum(self, i: int, alpha: float = 1.0) -> np.ndarray:
        """π* of prompt i over its classes (``Scenario.optimum``)."""
        return self.prompts[i].scenario.optimum(alpha)

    def build_tokenizer(self):
        """A word-level ``PreTrainedTokenizerFast`` over the game's vocabulary (no BOS, so a
        prompt is exactly its one token)."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        tok = Tokenizer(models.WordLevel(dict(self.vocab), unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece(prefix="##")
        return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                       unk_token="<unk>")

    def build_model(self, seed: int):
        """A tiny randomly initialised Qwen2 causal LM (``torch.manual_seed(seed)`` first)."""
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM

        h = self.hidden_size
        cfg = Qwen2Config(vocab_size=len(self.vocab), hidden_size=h, intermediate_size=2 * h,
                          num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                          max_position_embeddings=8, tie_word_embeddings=False,
                          pad_token_id=self.vocab["<pad>"], eos_token_id=self.vocab["<eos>"],
                          bos_token_id=None)
        torch.manual_seed(int(seed))
        model = Qwen2ForCausalLM(cfg)
        model.generation_config.pad_token_id = cfg.pad_token_id
        model.generation_config.eos_token_id = cfg.eos_token_id
        return model

    def token_probabilities(self, model) -> np.ndarray:
        """softmax(logits) at each prompt's position, float64, shape (prompts, vocabulary)."""
        import torch

        ids = torch.tensor([[self.vocab[p.prompt]] for p in self.prompts],
                           device=next(model.parameters()).device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[:, -1, :]
        return torch.softmax(logits.double(), dim=-1).cpu().numpy()

    def class_probabilities(self, probs: np.ndarray) -> list[np.ndarray]:
        """Token probabilities (``token_probabilities``) summed per answer class of each prompt;
        the ``OTHER`` entry is 1 minus the answers' sum (every non-answer token)."""
        out = []
        for i, ids in enumerate(self._class_ids):
            q = probs[i, ids]
            out.append(np.append(q, max(0.0, 1.0 - float(q.sum()))))
        return out

    def answer_distribution(self, model) -> list[np.ndarray]:
        """The policy's exact answer distribution of every prompt (classes in scenario order)."""
        return self.class_probabilities(self.token_probabilities(model))

    def tv(self, dists: Sequence[np.ndarray], alpha: float = 1.0) -> list[float]:
        """TV(π_θ, π*) of every prompt."""
        return [tv_distance(d, self.optimum(i, alpha)) for i, d in enumerate(dists)]


def default_game() -> AnswerGame:
    """The experiment's game: four prompts, two of each scenario, answer orders reversed.

    ``q0``: ``grpo-head`` with a0 best; ``q1``: ``grpo-head`` with a15 best; ``q2``: ``grpo-tail``
    with a0 best; ``q3``: ``grpo-tail`` with a15 best."""
    fwd, rev = ANSWER_TOKENS, ANSWER_TOKENS[::-1]
    head, tail = get_scenario("grpo-head"), get_scenario("grpo-tail")
    return AnswerGame([PromptGame("q0", head, fwd), PromptGame("q1", head, rev),
                       PromptGame("q2", tail, fwd), PromptGame("q3", tail, rev)])
