"""``greenepoch run``: bind a training process to the grid's carbon intensity.

A supervisor starts the training, decides every interval whether it should run now
(:mod:`.policies`, :mod:`.replan`), pauses it by its checkpoint signal and resumes it
(:mod:`.process`), keeps its state in a run directory (:mod:`.state`) and logs every
decision (:mod:`.log`); the same controller (:mod:`.controller`) runs on live data or on
accelerated history (:mod:`.clock`, :mod:`.feeds`).  :mod:`.gate` is the training-side
API for in-process pausing, with adapters for PyTorch Lightning (:mod:`.lightning`) and
Hugging Face Transformers (:mod:`.hf`).  docs/run.md is the user's guide.

This file imports nothing: the training side imports :mod:`.gate` alone.
"""
