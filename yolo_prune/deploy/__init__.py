"""Deployment: export formats as records, the parity check, INT8 quantization, and timing on a runtime (onnxruntime
CPU, PyTorch CPU or CUDA FP16). Builds on `pruning` (loading, cost) and `data` (calibration images)."""
