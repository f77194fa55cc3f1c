"""The model-facing layer shared by training and evaluation: HF LLaVA-NeXT / LLaVA-OneVision
loading and the offline tiny models (model.py, tiny.py), chat formats (chat.py), prompt
encoding and batching (encode.py), visual token counts (vision.py) and the launcher's
environment (dist.py).

It sits between the data (dataengine) and its two users: `train` and `eval` import it,
never each other, so a model is encoded for evaluation exactly as it was for training.
"""
