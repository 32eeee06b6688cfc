"""Trainer glue: turn groups of K sampled answers into the K rewards c_K[n].

Public names
------------
group_rewards(answers, table, K=None, *, failed="unique", uneven="refuse", pad_id=None, mask=None)
                                            -- rewards of one group or a batch (any framework).
FAILED, UNEVEN, is_failed                   -- the failed-answer and uneven-group policies.
trl_reward_func(extract_answer, table, ...) -- Hugging Face TRL ``GRPOTrainer`` reward function.
trl_async_reward_func(extract_answer, table, ...)
                                            -- TRL's async GRPO trainer (one call per group).
add_row_ids(dataset)                        -- a row-id column, so TRL groups are checked by row.
register_verl_estimator()                   -- verl 0.9: the ``aqpgen`` advantage estimator (table
                                               rewards by uid; see ``aqpgen.integrations.verl``).
verl_batch_reward, register_verl_advantage  -- retired (raise, naming the verl 0.9 path).
openrlhf_group_hook(extract_answer, table, n), wrap_generate_responses(...)
                                            -- OpenRLHF per-prompt hook on the rollout actor.

Modules: ``grouping`` (the one grouping / counting code, shared by all adapters), ``trl``,
``verl``, ``openrlhf``.  None of them imports its framework at import time.  Every adapter takes
K from the framework's own setting, groups by the framework's group identity (TRL dataset row /
verl uid / OpenRLHF prompt call), refuses a group of the wrong size with an error that
names the setting (or, with ``uneven="serve"``, scores a group of K' < K with the K' row),
applies one policy to failed answers (``failed=``: None and NaN alike), and refuses a table
whose rows break their certificate in the float32 the framework stores rewards in
(``allow_imprecise=True`` to override).
"""

from aqpgen.integrations.grouping import UNEVEN, group_rewards
from aqpgen.integrations.openrlhf import openrlhf_group_hook, wrap_generate_responses
from aqpgen.integrations.trl import add_row_ids, trl_async_reward_func, trl_reward_func
from aqpgen.integrations.verl import (
                                      register_verl_advantage,
                                      register_verl_estimator,
                                      verl_batch_reward,
)
from aqpgen.runtime.table import FAILED, is_failed

__all__ = ["FAILED", "UNEVEN", "add_row_ids", "group_rewards", "is_failed", "openrlhf_group_hook",
           "register_verl_advantage", "register_verl_estimator", "trl_async_reward_func",
           "trl_reward_func", "verl_batch_reward", "wrap_generate_responses"]
