r"""The multi-token answer game: a completion is L digit tokens, its answer their **sum**, so many
completions share an answer and the answers have different numbers of completions.

The game
--------
A prompt is one token (``r0``, ``r1``, ...).  A completion is ``L`` generated tokens
(``max_completion_length=L``); when all ``L`` are digit tokens ``d0`` ... ``d{V-1}`` its answer
is the sum of their values (``"s0"`` ... ``"s{L(V-1)}"``), else the class ``other`` (a special
token, an early end of sequence, a prompt token).  With the default V = 4, L = 2 the seven sums
are reached by 1, 2, 3, 4, 3, 2, 1 of the 16 digit sequences: π(answer) is a sum over up to 4
sequences, and a sequence's own probability says little about its answer's.  (At L = 3 the
oracle itself, trained with the exact answer-level reward, stalled far from the optimum within
the experiment's 300-step budget, which would rank nothing; L = 2 keeps it close.)

Each prompt plays a ``Scenario`` over these 11 classes, in its own order of the sums; the
objective of a prompt is the answer-level KL game of ``aqpgen.experiments.answer_game``,
:math:`\sum_z\pi(z)R_z + \tau H(\pi)` over *answers*, with optimum softmax(R/τ).  The sequence
log-likelihood proxy (``aqpgen.experiments.grpo_run``) instead plays the *sequence* entropy game;
its fixed point is :math:`\pi(z) \propto N_z e^{R_z/\tau}` (N_z sequences of answer z) for the
sum, the bias the tables avoid.

The exact answer distribution
-----------------------------
TRL samples at temperature 1 with no top-k / top-p, so a digit sequence has probability
:math:`\prod_t \mathrm{softmax}(\text{logits}_t)[d_t]`.  :meth:`SequenceGame.sequence_logprobs`
runs the model once on every prompt followed by every digit prefix of length L − 1 (V^(L−1) rows
per prompt, one batched forward pass) and reads all L next-token log-softmaxes from it;
:meth:`SequenceGame.answer_distribution` sums the V^L sequence probabilities (float64) per answer,
``other`` taking the rest.  This is the policy's answer distribution, not an estimate.

Public names
------------
DIGITS, LENGTH, SequenceGame, sequence_game()
SequenceGame.extract_answer(text), .answer_distribution(model), .sequence_logprobs(model),
.completion_logprobs(model, prompt_ids, completion_ids), .tv(dists, alpha), .optimum(i, alpha)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from aqpgen.experiments.answer_game import OTHER, SPECIAL_TOKENS, AnswerGame, PromptGame
from aqpgen.game.scenarios import Scenario, tv_distance

__all__ = ["DIGITS", "LENGTH", "SequenceGame", "sequence_game"]

#: Default number of digit tokens V and completion length L.
DIGITS = 4
LENGTH = 2


class SequenceGame:
    """Prompts whose completions are ``length`` digit tokens and whose answer is their sum.

    Parameters
    ----------
    prompts : sequence of PromptGame
        ``order``: a permutation of the sum labels ``s0`` ... ``s{length (digits - 1)}``; the
        scenario has one reward more, for ``other``.  All share τ.
    digits, length : int
        V and L (V^L sequences are enumerated: keep it small).
    hidden_size : int
        Width of the tiny Qwen2.
    """

    def __init__(self, prompts: Sequence[PromptGame], *, digits: int = DIGITS,
                 length: int = LENGTH, hidden_size: int = 32):
        prompts = tuple(prompts)
        if not prompts:
            raise ValueError("a SequenceGame needs at least one prompt")
        for name, v, lo in (("digits", digits, 2), ("length", length, 2)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, received {v!r}")
        if digits ** length > 4096:
            raise ValueError(f"digits ** length = {digits ** length} sequences is too many to "
                             "enumerate (at most 4096)")
        self.digits, self.length = digits, length
        self.sums = tuple(f"s{k}" for k in range(length * (digits - 1) + 1))
        taus = {p.scenario.tau for p in prompts}
        if len(taus) != 1:
            raise ValueError(f"every prompt must share tau, received {sorted(taus)}")
        for p in prompts:
            if sorted(p.order) != sorted(self.sums) or p.scenario.S != len(self.sums) + 1:
                raise ValueError(f"prompt {p.prompt!r}: order must be a permutation of the "
                                 f"{len(self.sums)} sums and the scenario must have one reward "
                                 "more (other)")
        names = [p.prompt for p in prompts]
        if len(set(names)) != len(names):
            raise ValueError(f"prompt tokens must be distinct, received {names}")
        self.prompts, self.tau, self.hidden_size = prompts, float(taus.pop()), int(hidden_size)
        self.digit_tokens = tuple(f"d{j}" for j in range(digits))
        self.vocab = {w: i for i, w in enumerate(SPECIAL_TOKENS + tuple(names) + self.digit_tokens)}
        seqs = np.array(list(itertools.product(range(digits), repeat=length)), dtype=np.int64)
        self._seqs = seqs                                  # (V^L, L) digit values
        self._seq_sum = seqs.sum(axis=1)                   # answer (sum) of every sequence
        self._class_of_sum = [np.array([p.order.index(f"s{s}") for s in self._seq_sum])
                              for p in prompts]

    def __repr__(self) -> str:
        sc = ", ".join(f"{p.prompt}:{p.scenario.name}" for p in self.prompts)
        return f"SequenceGame({sc}, V={self.digits}, L={self.length}, tau={self.tau})"

    @property
    def completion_length(self) -> int:
        """Tokens the trainer generates per completion (L)."""
        return self.length

    def multiplicity(self) -> dict[str, int]:
        """Number of digit sequences of each sum label."""
        return {f"s{k}": int((self._seq_sum == k).sum()) for k in range(len(self.sums))}

    def extract_answer(self, text) -> str:
        """The answer of a completion's text: ``s<sum>`` when it is exactly L digit tokens, else
        ``OTHER`` (special tokens decode to nothing, so an early end gives fewer than L)."""
        toks = text.split() if isinstance(text, str) else []
        if len(toks) != self.length or any(t not in self.digit_tokens for t in toks):
            return OTHER
        return f"s{sum(int(t[1:]) for t in toks)}"

    #: π* of prompt i over its classes, and a prompt's position in ``prompts``: the one-token
    #: game's methods (both read only ``self.prompts``).
    optimum = AnswerGame.optimum
    index = AnswerGame.index

    def build_tokenizer(self):
        """The word-level tokenizer of ``AnswerGame.build_tokenizer`` over this vocabulary."""
        return AnswerGame.build_tokenizer(self)

    def build_model(self, seed: int):
        """A tiny randomly initialised Qwen2 (``AnswerGame.build_model``)."""
        return AnswerGame.build_model(self, seed)

    def sequence_logprobs(self, model) -> np.ndarray:
        """log π(sequence) of every digit sequence of every prompt, float64, shape
        (prompts, V^L), sequences in ``itertools.product`` order."""
        import torch

        V, L, P = self.digits, self.length, len(self.prompts)
        d0 = self.vocab[self.digit_tokens[0]]
        prefixes = self._seqs[::V, : L - 1] + d0            # every prefix of length L - 1
        rows = [[self.vocab[p.prompt]] + list(pre) for p in self.prompts for pre in prefixes]
        ids = torch.tensor(rows, device=next(model.parameters()).device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits.double()
        lsm = torch.log_softmax(logits, dim=-1).cpu().numpy()  # (P * V^(L-1), L, vocab)
        lsm = lsm.reshape(P, V ** (L - 1), L, -1)[..., d0:d0 + V]
        steps = lsm[:, np.arange(V ** L) // V]   # (P, V^L, L, V): each sequence's prefix row
        idx = np.broadcast_to(self._seqs[None, :, :, None], (P, V ** L, L, 1))
        return np.take_along_axis(steps, idx, axis=3)[..., 0].sum(axis=2)

    def class_probabilities(self, seq_logp: np.ndarray) -> list[np.ndarray]:
        """Sequence log-probabilities summed per answer class of each prompt; ``other`` takes
        1 minus the digit sequences' total."""
        out = []
        for i, cls in enumerate(self._class_of_sum):
            p = np.exp(seq_logp[i])
            q = np.bincount(cls, weights=p, minlength=len(self.sums))
            out.append(np.append(q, max(0.0, 1.0 - float(q.sum()))))
        return out

    def answer_distribution(self, model) -> list[np.ndarray]:
        """The policy's exact answer distribution of every prompt (classes in scenario order)."""
        return self.class_probabilities(self.sequence_logprobs(model))

    def completion_logprobs(self, model, prompt_ids: Sequence[int],
                            completion_ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """The model's log-probability of each token of each completion (what the trainer has
        for a completion, end-of-sequence token included), one array per completion."""
        import torch

        n = max(len(c) for c in completion_ids)
        pad = self.vocab["<pad>"]
        rows = [[p] + list(c) + [pad] * (n - len(c)) for p, c in zip(prompt_ids, completion_ids)]
        ids = torch.tensor(rows, device=next(model.parameters()).device)
        with torch.no_grad():
            lsm = torch.log_softmax(model(input_ids=ids).logits.double(), dim=-1)
        lp = torch.gather(lsm[:, :-1, :], 2, ids[:, 1:, None])[..., 0].cpu().numpy()
        return [lp[j, : len(c)] for j, c in enumerate(completion_ids)]

    def tv(self, dists: Sequence[np.ndarray], alpha: float = 1.0) -> list[float]:
        """TV(π_θ, π*) of every prompt."""
        return [tv_distance(d, self.optimum(i, alpha)) for i, d in enumerate(dists)]


def _tail(n: int, tau: float) -> tuple[float, ...]:
    return tuple(float(v) for v in -1.1 * tau * np.log(np.arange(1, n + 1, dtype=np.float64)))


def sequence_game(digits: int = DIGITS, length: int = LENGTH, tau: float = 0.5,
                  hidden_size: int = 32) -> SequenceGame:
    """The experiment's multi-token game: four prompts.

    ``r0``: head rewards (1.0, 0.8, 0.5, 0.2, 0.0 for the five lowest sums, best ``s0`` with one
    sequence; -1 for the rest and ``other``); ``r1``: the same rewards with the sums ordered from
    the middle out (best the most frequent sum); ``r2`` / ``r3``: tail rewards −1.1 τ ln(rank)
    with the sums ascending / from the middle out."""
    S = length * (digits - 1) + 1
    asc = tuple(f"s{k}" for k in range(S))
    mid = tuple(f"s{k}" for k in sorted(range(S), key=lambda k: (abs(k - (S - 1) / 2), k)))
    good = (1.0, 0.8, 0.5, 0.2, 0.0)
    head = Scenario("seq-head", good + (-1.0,) * (S + 1 - len(good)), tau,
                    description="five good sums, the rest and other -1")
    tail = Scenario("seq-tail", _tail(S + 1, tau), tau,
                    description="R = -1.1 tau ln(rank), other last")
    return SequenceGame([PromptGame("r0", head, asc), PromptGame("r1", head, mid),
                         PromptGame("r2", tail, asc), PromptGame("r3", tail, mid)],
                        digits=digits, length=length, hidden_size=hidden_size)
