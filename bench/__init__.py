"""colorbench: a reproducible benchmark and ablation suite for pix2pix-style colourisation GANs.

The training run is ``bench.training.train.train(config, run_dir)``; configs come from ``bench.config``.
"""
