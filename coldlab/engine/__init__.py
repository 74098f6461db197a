"""Training, evaluation, checkpoints and the worker loop."""
