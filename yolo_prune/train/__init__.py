"""Training and validation through Ultralytics' own trainer and validator, subclassed at their documented hooks.
Builds on `pruning` (what the regulariser may touch) and `data` (dataset checks)."""
