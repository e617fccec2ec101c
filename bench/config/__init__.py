"""The configuration layer, the lowest: what a run is, validated before anything runs.

* :mod:`bench.config.schema`: the typed, frozen dataclasses of a run (``RunConfig``), their
  validation, ``--set`` overrides and YAML I/O; its public names are re-exported here.
* :mod:`bench.config.yamlio`: the one YAML reader and writer of colorbench.
* :mod:`bench.config.names`, :mod:`bench.config.colour_spaces`, :mod:`bench.config.patch_geometry`:
  the names and arithmetic the config validates against, shared with the heavy modules.

Nothing here imports torch: every submitted job and every command line call loads it.
"""
from bench.config.schema import (
    INT_LIMIT,
    LEAKY_SLOPE,
    MAX_BATCH_SIZE,
    MAX_IMAGE_SIZE,
    SEED_LIMIT,
    ConfigError,
    DataConfig,
    DiscriminatorConfig,
    EvalConfig,
    GeneratorConfig,
    LogConfig,
    LossConfig,
    OptimConfig,
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    describe_fields,
    dump_config,
    fields_markdown,
    flatten_keys,
    knob,
    load_config,
    parse_override,
    read_config_file,
    read_yaml,
)

__all__ = [
    "INT_LIMIT",
    "LEAKY_SLOPE",
    "MAX_BATCH_SIZE",
    "MAX_IMAGE_SIZE",
    "SEED_LIMIT",
    "ConfigError",
    "DataConfig",
    "DiscriminatorConfig",
    "EvalConfig",
    "GeneratorConfig",
    "LogConfig",
    "LossConfig",
    "OptimConfig",
    "RunConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "describe_fields",
    "dump_config",
    "fields_markdown",
    "flatten_keys",
    "knob",
    "load_config",
    "parse_override",
    "read_config_file",
    "read_yaml",
]
