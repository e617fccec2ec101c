import dataclasses

import pytest

from bench.config import (
    ConfigError,
    RunConfig,
    config_from_dict,
    config_to_dict,
    describe_fields,
    dump_config,
    load_config,
)
from bench.run.identity import config_hash, run_id


def test_defaults_are_the_pix2pix_paper():
    c = RunConfig()
    assert c.loss.lambda_rec == 100.0 and c.loss.adversarial == "bce" and c.loss.reconstruction == "l1"
    assert c.optim.lr == 2e-4 and c.optim.betas == (0.5, 0.999)
    assert c.data.batch_size == 1 and c.data.image_size == 256 and c.data.augmentation == "flip+jitter"
    assert c.generator.arch == "unet" and c.generator.depth == 8 and c.generator.dropout
    assert c.discriminator.n_layers == 3 and c.discriminator.conditional
    assert c.optim.schedule == "linear" and c.optim.epochs == 200 and c.optim.decay_start_epoch == 100
    assert c.colour_space == "lab"


def test_yaml_round_trip_and_stable_id(tmp_path):
    c = load_config(None, ["generator.skip_connections=false", "optim.lr=1e-4", "optim.betas=[0.9, 0.99]"])
    assert c.generator.skip_connections is False and c.optim.lr == 1e-4 and c.optim.betas == (0.9, 0.99)
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(c))
    again = load_config(path)
    assert again == c and config_hash(again) == config_hash(c)


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 2e-4\n")  # PyYAML reads this as a string
    assert load_config(path).optim.lr == 2e-4


@pytest.mark.parametrize("override, fragment", [
    ("generator.norm=group", "generator.norm: got 'group'; allowed: batch, instance"),
    ("discriminator.n_layers=4.5", "discriminator.n_layers: got 4.5; allowed: 0, 1, 2, 3, 4, 5"),
    ("discriminator.n_layers=true", "discriminator.n_layers: got True"),
    ("loss.adversarial=wgan", "allowed: bce, lsgan, none"),
    ("data.batch_size=0", "data.batch_size: got 0; allowed: a number > 0"),
    ("data.batch_size=two", "data.batch_size: got 'two'; allowed: an integer"),
    ("generator.dropout=1", "generator.dropout: got 1; allowed: true, false"),
    ("optim.lr=fast", "optim.lr: got 'fast'; allowed: a number"),
    ("optim.betas=[0.5]", "optim.betas: got [0.5]"),
    ("optim.step_factor=2", "optim.step_factor: got 2.0"),
    ("generator.depth=4", "generator.depth: got 4; allowed: 5..9"),
    ("colour_space=hsv", "colour_space: got 'hsv'; allowed: lab, rgb"),
    ("precision=fp16", "allowed: fp32, bf16"),
    ("generator.flavour=x", "unknown config key generator.flavour; allowed keys of generator: arch, depth"),
    ("flavour=x", "unknown config key flavour; allowed keys: generator, discriminator"),
    ("data.image_size=100", "data.image_size: got 100; generator.depth=8 needs a multiple of 256"),
    ("discriminator.arch=none", "set both to none, or neither"),
    ("loss.adversarial=none", "set both to none, or neither"),
    ("data.dataset=folder", "data.root: the folder dataset needs data.root"),
    ("data.train_list=a.txt", "give both or neither"),
    ("data.test_fraction=1.5", "data.test_fraction: got 1.5"),
    ("generator.pretrained_encoder=true", "needs generator.arch: resnet18_unet"),
    ("optim.grad_clip_norm=-1", "optim.grad_clip_norm: got -1.0"),
    ("noequals", "expected key=value"),
])
def test_bad_values_name_the_field_and_allowed_values(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)


def test_no_loss_term_and_warmup_without_reconstruction_are_rejected():
    with pytest.raises(ConfigError, match="at least one term"):
        load_config(None, ["loss.reconstruction=none", "loss.lambda_adv=0"])
    with pytest.raises(ConfigError, match="warmup_epochs"):
        load_config(None, ["loss.reconstruction=none", "optim.warmup_epochs=2"])


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2:1: expected ',' or '\]', but got '<stream end>'"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("generator:\n  ngf: -3\n")
    with pytest.raises(ConfigError, match=r"wrong.yaml: generator.ngf: got -3"):
        load_config(wrong)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        load_config(listing)


def test_id_ignores_seed_paths_device_and_cadence():
    base = RunConfig()
    same = load_config(None, ["seed=7", "device=cpu", "data.cache_dir=/tmp/x", "log_every=3",
                              "checkpoint_every=9", "eval.every_epochs=1", "generator.pretrained_path=/w.pth"])
    assert config_hash(same) == config_hash(base)
    assert run_id(same, "0123abcd") == f"{config_hash(base)}-0123abcd-s7" != run_id(base, "0123abcd")


def _other_value(key, default):
    """A valid value different from the default for every identity field."""
    special = {"generator.arch": "resnet18_unet", "discriminator.arch": "none", "loss.adversarial": "none",
               "data.dataset": "samples", "optim.betas": [0.9, 0.99], "optim.steps": 10,
               "optim.grad_clip_norm": 1.0, "data.test_fraction": 0.2, "optim.step_factor": 0.1,
               "generator.depth": 7, "generator.pretrained_encoder": True, "data.n_train": 10, "data.n_test": 5,
               "data.task": "paired", "optim.final_lr_fraction": 0.5, "generator.leaky_slope": 0.01,
               "discriminator.leaky_slope": 0.01}
    if key in special:
        return special[key]
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default + 1
    return None


def test_every_identity_field_changes_the_id():
    identity = {f"{s.name}.{f.name}" if dataclasses.is_dataclass(getattr(RunConfig(), s.name)) else s.name
                for s in dataclasses.fields(RunConfig)
                for f in (dataclasses.fields(getattr(RunConfig(), s.name))
                          if dataclasses.is_dataclass(getattr(RunConfig(), s.name)) else [s])
                if f.metadata.get("identity", True)}
    companions = {"generator.arch": ["data.image_size=256"], "discriminator.arch": ["loss.adversarial=none"],
                  "loss.adversarial": ["discriminator.arch=none"],
                  "generator.pretrained_encoder": ["generator.arch=resnet18_unet"],
                  "generator.depth": [], "data.image_size": ["generator.depth=5"],
                  "optim.grad_clip_scope": ["optim.grad_clip_norm=1.0"],
                  "data.task": ["data.dataset=facades", "colour_space=rgb"]}
    base_id = config_hash(RunConfig())
    checked = 0
    for key, default, _ in describe_fields():
        if key not in identity or key == "data.dataset":
            continue
        value = _other_value(key, default)
        if value is None:  # strings with choices: take another allowed value
            value = {"generator.norm": "instance", "discriminator.norm": "instance", "loss.reconstruction": "l2",
                     "data.augmentation": "flip", "optim.schedule": "cosine", "colour_space": "rgb",
                     "optim.grad_clip_scope": "generator",
                     "precision": "bf16"}[key]
        if key == "data.image_size":
            value = 32 * 9
        overrides = [f"{key}={value}"] + companions.get(key, [])
        changed = config_from_dict(_nested(overrides))
        assert config_hash(changed) != base_id, key
        checked += 1
    assert checked >= 30


def _nested(overrides):
    from bench.config import apply_overrides
    return apply_overrides({}, overrides)


def test_config_to_dict_is_plain():
    d = config_to_dict(RunConfig())
    assert d["optim"]["betas"] == [0.5, 0.999] and d["generator"]["skip_connections"] is True


def test_run_config_yaml_is_accepted_as_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("run_id: x\nconfig_id: y\nconfig:\n  seed: 5\n")
    assert load_config(path).seed == 5


def test_readme_lists_every_field_with_its_default():
    from pathlib import Path

    from bench.config import fields_markdown
    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    assert fields_markdown() in page, ("docs/configuration.md's config table is stale: "
                                       "paste bench.config.fields_markdown()")


def test_patchgan_needs_a_large_enough_image():
    with pytest.raises(ConfigError, match="discriminator.n_layers=5 needs at least 96"):
        load_config(None, ["data.image_size=64", "generator.depth=6", "discriminator.n_layers=5"])
    assert load_config(None, ["data.image_size=96", "generator.depth=5", "discriminator.n_layers=5"])


# ---------------------------------------------------------------------------------------
# A list field takes its items separated by commas too

@pytest.mark.parametrize("override, expected", [
    ("eval.metrics=psnr_rgb8,ssim_rgb8", ("psnr_rgb8", "ssim_rgb8")),
    ("eval.metrics=psnr_rgb8, ssim_rgb8", ("psnr_rgb8", "ssim_rgb8")),
    ("eval.metrics=[psnr_rgb8,ssim_rgb8]", ("psnr_rgb8", "ssim_rgb8")),
    ("eval.metrics=cf", ("cf",)),
    ("eval.metrics=''", ()),
])
def test_a_list_of_names_is_taken_comma_separated(override, expected):
    assert load_config(None, [override]).eval.metrics == expected


def test_a_comma_separated_list_reads_its_items_as_the_element_type():
    comma, bracketed = load_config(None, ["optim.betas=0.9,0.99"]), load_config(None, ["optim.betas=[0.9, 0.99]"])
    assert comma.optim.betas == (0.9, 0.99) and config_hash(comma) == config_hash(bracketed)
    assert config_from_dict({"eval": {"metrics": "l1_rgb8,cf"}}).eval.metrics == ("l1_rgb8", "cf")  # a YAML file too


@pytest.mark.parametrize("override, fragment", [
    ("eval.metrics=psnr_rgb8,,cf", "eval.metrics: got 'psnr_rgb8,,cf'; allowed: a list, or its items separated by "
                                   "commas (none empty)"),
    ("eval.metrics=psnr_rgb8,", "(none empty)"),
    ("eval.metrics=psnr_rgb8,nope", "eval.metrics: unknown nope; allowed: psnr_rgb8"),
    ("optim.betas=0.9,0.99,0.999", "optim.betas: got '0.9,0.99,0.999'; allowed: a list of 2 numbers"),
    ("optim.betas=0.9", "optim.betas: got 0.9; allowed: a list of 2 numbers"),
    ("optim.betas=fast,0.99", "optim.betas[0]: got 'fast'; allowed: a number"),
])
def test_a_bad_comma_separated_list_names_the_field(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)
