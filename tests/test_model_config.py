"""Tests of the network knobs of the config that reproduce the source reports' variants:
generator.output_bias, generator.leaky_slope, generator.arch classic_unet, discriminator.leaky_slope,
discriminator.first_bias and discriminator.last_stride."""
from __future__ import annotations

import pytest
import yaml

from bench.cli import main
from bench.config import ConfigError, RunConfig, load_config
from bench.run.identity import config_hash

CLASSIC = ["generator.arch=classic_unet", "generator.depth=4", "generator.dropout=false"]
SEED_002 = ["data.dataset=facades", "data.task=paired", "colour_space=rgb"]


@pytest.mark.parametrize("overrides, fragment", [
    (["generator.leaky_slope=1"], "generator.leaky_slope: got 1.0; allowed: 0 <= value < 1"),
    (["generator.leaky_slope=-0.01"], "generator.leaky_slope: got -0.01; allowed: 0 <= value < 1"),
    (["generator.leaky_slope=.nan"], "generator.leaky_slope: got nan"),
    (["generator.leaky_slope=.inf"], "generator.leaky_slope: got inf"),
    (["discriminator.leaky_slope=1.5"], "discriminator.leaky_slope: got 1.5; allowed: 0 <= value < 1"),
    (["discriminator.last_stride=3"], "discriminator.last_stride: got 3; allowed: 1, 2"),
    (["discriminator.last_stride=2", "discriminator.n_layers=0"], "discriminator.last_stride: got 2; the n_layers 0"),
    (["discriminator.first_bias=0"], "discriminator.first_bias: got 0; allowed: true, false"),
    (["generator.arch=resnet18_unet", "generator.output_bias=false"],
     "generator.output_bias: false is only available with generator.arch: unet"),
    ([*CLASSIC, "generator.output_bias=false"], "generator.output_bias: false is only available"),
    ([*CLASSIC, "generator.leaky_slope=0.01"], "generator.leaky_slope: got 0.01; only generator.arch: unet has"),
    (["generator.arch=resnet18_unet", "generator.leaky_slope=0.01"], "generator.leaky_slope: got 0.01"),
    (["generator.arch=classic_unet", "generator.dropout=false"],
     "generator.depth: got 8; allowed with generator.arch classic_unet: 1..6"),
    (["generator.arch=classic_unet", "generator.depth=0", "generator.dropout=false"], "generator.depth: got 0"),
    (["generator.arch=classic_unet", "generator.depth=4"],
     "generator.dropout: classic_unet has no dropout; set generator.dropout: false"),
    ([*CLASSIC, "generator.pretrained_encoder=true"], "needs generator.arch: resnet18_unet"),
    ([*CLASSIC, "data.image_size=200"], "data.image_size: got 200; generator.depth=4 needs a multiple of 16"),
    (["discriminator.last_stride=2", "discriminator.n_layers=5", "data.image_size=96", "generator.depth=5"],
     "discriminator.n_layers=5 needs at least 128 for a non-empty patch map (with discriminator.last_stride=2)"),
])
def test_bad_network_knobs_name_the_field(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert fragment in str(err.value)


@pytest.mark.parametrize("overrides", [
    CLASSIC, [*CLASSIC, "generator.skip_connections=false", "generator.norm=instance"],
    ["generator.arch=classic_unet", "generator.depth=6", "generator.dropout=false", "data.image_size=64"],
    ["generator.leaky_slope=0", "discriminator.leaky_slope=0.01"],
    ["generator.output_bias=false", "discriminator.first_bias=false", "discriminator.n_layers=0"],
    ["discriminator.last_stride=2", "discriminator.n_layers=5", "data.image_size=128", "generator.depth=5"],
])
def test_valid_network_knobs_are_accepted(overrides):
    """Accepted means kept: each value given is the one the config holds (read back field by field)."""
    config = load_config(None, overrides)
    for text in overrides:
        key, value = text.split("=", 1)
        section, field = key.split(".")
        expected = yaml.safe_load(value)
        assert getattr(getattr(config, section), field) == expected, text


@pytest.mark.parametrize("override", [
    "generator.output_bias=false", "generator.leaky_slope=0.01", "discriminator.leaky_slope=0.01",
    "discriminator.first_bias=false", "discriminator.last_stride=2", "generator.arch=classic_unet",
])
def test_network_knobs_are_part_of_the_run_identity(override):
    common = ["generator.depth=6", "generator.dropout=false"]  # valid for unet and classic_unet alike
    assert config_hash(load_config(None, [*common, override])) != config_hash(load_config(None, common))


def test_params_command_prints_seed_report_002_counts(capsys):
    # Source report 002, Table I: G 54,413,952 and D 2,768,641 for unet_256 and the 70x70 PatchGAN on facades,
    # RGB -> RGB; the reference implementation's 54,413,955 and 2,768,705 include 3 and 64 more biases.
    # No data is needed: the default facades root is absent here.
    assert main(["params", *(arg for o in SEED_002 for arg in ("--set", o))]) == 0
    out = capsys.readouterr().out
    assert "54,413,955" in out and "2,768,705" in out
    knobs = [*SEED_002, "generator.output_bias=false", "discriminator.first_bias=false"]
    assert main(["params", *(arg for o in knobs for arg in ("--set", o))]) == 0
    out = capsys.readouterr().out
    assert "54,413,952" in out and "2,768,641" in out


def test_defaults_are_the_reference_networks():
    c = RunConfig()
    assert c.generator.output_bias and c.generator.leaky_slope == 0.2
    assert c.discriminator.first_bias and c.discriminator.leaky_slope == 0.2 and c.discriminator.last_stride == 1
