"""Deployment: export formats as records, the parity check, INT8 quantization, and onnxruntime timing.
Builds on `pruning` (loading, cost) and `data` (calibration images)."""
