"""Curriculum fine-tuning of HF-native LLaVA-NeXT / LLaVA-OneVision models with DeepSpeed.

`python -m train --curriculum FILE --model PATH|tiny --out RUN_DIR` (docs/training.md).
Read first: trainer.py (the loop), encode.py (labels and placeholders), model.py (parts,
loading, saving), config.py (DeepSpeed JSON), checkpoint.py (run directory and resume).
"""
