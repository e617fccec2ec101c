"""Speed measurement of the training step (``colorbench perf``) and the plain reference-style baseline."""
