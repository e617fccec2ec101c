"""The evaluation layer: from a generator (or any method's outputs) to metric records.

* :mod:`bench.evaluation.outputs`: a generator's test outputs as 8-bit RGB, and the sample grids.
* :mod:`bench.evaluation.scoring`: the scoring setup and one ``metrics.jsonl`` record per metric.
* :mod:`bench.evaluation.metrics`: the metric functions, registered by protocol name.
* :mod:`bench.evaluation.detectors`: the networks some metrics need (Inception, AlexNet), from local weights.
* :mod:`bench.evaluation.reference`: ground-truth features, computed once per test set and cached.
* :mod:`bench.evaluation.baselines`: the trivial baselines every colouriser must beat.
* :mod:`bench.evaluation.score_run`: ``colorbench eval``, a run's checkpoint scored again.
* :mod:`bench.evaluation.fingerprint`: the protocol fingerprint of a record: what two numbers must share.
* :mod:`bench.evaluation.predictions`: a folder of any method's predictions, matched to the test items and checked.
* :mod:`bench.evaluation.method_dir`: a method directory, the scores of a method colorbench did not train.
* :mod:`bench.evaluation.score_predictions`: ``colorbench score``, predictions or a trivial baseline scored.
"""
