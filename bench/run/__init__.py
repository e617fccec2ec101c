"""The run layer: what a run directory is, above the config and below everything that computes.

* :mod:`bench.run.rundir`: its files (atomic writes, append-only JSONL, summaries) and its lock.
* :mod:`bench.run.identity`: the ids that name a run (config hash, data id, seed).
* :mod:`bench.run.checkpoint`: ``checkpoint.pt``, saved atomically and loaded with ``weights_only``.
* :mod:`bench.run.randomness`: seeding, the RNG states a checkpoint keeps, derived seeds.
* :mod:`bench.run.machine`: the machine and device a run executes on, as ``config.yaml`` records it.
* :mod:`bench.run.reproducible`: the reproducible mode (pinned CPU math code paths).
* :mod:`bench.run.compare`: two run directories compared file by file (bitwise resume).
"""
