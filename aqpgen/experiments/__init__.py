"""End-to-end experiments with a real trainer (package): does a GRPO run end closer to the
game's optimum with aqpgen's tables?  Needs torch and TRL (``make experiment`` installs them).

Modules (each lists its own public names)
-----------------------------------------
answer_game  the answer-level game a trainer plays: prompts, answer tokens, rewards, the tiny
             Qwen2 and its exact answer distribution from the logits.
grpo_run     one run of an unmodified TRL ``GRPOTrainer`` on that game (RunConfig, run_grpo).
plan         the default plan, running it on worker processes, candidate presets, the
             simulator's predictions, the results file (``aqpgen experiment``).
summary      what the runs measured: final TV and spread, steps to thresholds, gap closed, the
             check of ``aqpgen recommend`` against the measurements.
The report page is ``aqpgen.report.experiments``; the table choice ``aqpgen.recommend``.
"""
