"""Training and evaluation: optimizer/schedule, train step with EMA, checkpoints, metrics, the loop."""
