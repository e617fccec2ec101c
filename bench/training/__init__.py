"""The training layer: one run, ``bench.training.train.train(config, run_dir)``.

* :mod:`bench.training.train`: the loop (resume, logging, evaluations, checkpoints, DONE).
* :mod:`bench.training.step`: one update, D then G.
* :mod:`bench.training.losses`, :mod:`bench.training.schedules`: the loss terms and learning-rate schedules.
* :mod:`bench.training.signals`: SIGINT/SIGTERM finish the step, save it and stop.
* :mod:`bench.training.allocator`: freed memory kept in the process on the CPU.
* :mod:`bench.training.trackers`: a run's logs mirrored to TensorBoard, MLflow or W&B.
"""
