"""The pruning core: torch, torch-pruning and Ultralytics' `nn` modules only. Model in, smaller model out.

load -> surgery (lossless rewrites) -> prune (structure, importance, allocation, search) -> checkpoint; plus the
sensitivity scan, the unstructured comparison, and cost counting. Nothing here trains, exports or writes reports.
"""
