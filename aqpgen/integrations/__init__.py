"""Trainer glue: turn groups of K sampled answers into the K rewards c_K[n].

Public names
------------
group_rewards(answers, table, K=None)     -- rewards of one group (any framework, or none).
trl_reward_func(extract_answer, table, ...) -- Hugging Face TRL ``GRPOTrainer`` reward function.
add_row_ids(dataset)                      -- add a row-id column so TRL groups are checked by row.
verl_batch_compute_score(...), register_verl_advantage(...)  -- verl (``aqpgen.integrations.verl``).
openrlhf_group_hook(...), patch_openrlhf_engine(...)         -- OpenRLHF (``aqpgen.integrations.openrlhf``).

Modules: ``grouping`` (the one grouping / counting code, shared by all adapters), ``trl``,
``verl``, ``openrlhf``.  None of them imports its framework at import time.
"""

from aqpgen.integrations.grouping import group_rewards
from aqpgen.integrations.trl import add_row_ids, trl_reward_func

__all__ = ["add_row_ids", "group_rewards", "trl_reward_func"]
