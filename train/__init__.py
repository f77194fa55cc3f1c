"""Curriculum fine-tuning of HF-native LLaVA-NeXT / LLaVA-OneVision models with DeepSpeed.

`python -m train --curriculum FILE --model PATH|tiny --out RUN_DIR` (docs/training.md).
Read first: trainer.py (the loop), parts.py (what a stage trains), config.py (the run's
settings and DeepSpeed JSON), checkpoint.py (run directory and resume); the model, its
chat format and the encoding of samples are the shared layer in vlm/ (model.py, encode.py).
"""
