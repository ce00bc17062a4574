"""Training: optimizer/schedule, train step with EMA, checkpoints, metrics (also eval.py's), the steps of a run."""
