"""The GPU path's knobs, checked on the CPU: batches cropped where the images live equal the CPU path's bit
for bit, channels-last runs and resumes, TF32 needs CUDA, and what each knob does to the run id."""
import itertools

import pytest
import torch
import yaml

from bench.cli import main
from bench.config import ConfigError, load_config
from bench.data.augmentation import augment, crop_on_device
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.run.compare import run_differences
from bench.run.identity import config_hash
from bench.training.batches import TrainingImages, device_training_batch
from bench.training.train import train, training_batch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(image_folder, *overrides):
    """A 32x32 pix2pix that trains a few steps in about a second."""
    return load_config(None, [
        "data.dataset=folder", f"data.root={image_folder}", "data.image_size=32", "data.batch_size=4",
        "data.test_fraction=0.25", "generator.depth=5", "generator.ngf=8", "discriminator.ndf=8",
        "discriminator.n_layers=1", "optim.steps=6", "optim.schedule=constant", "eval.every_epochs=0",
        "eval.n_sample_images=2", "eval.metrics=psnr_rgb8,ssim_rgb8", "log_every=1", "device=cpu",
        "keep_training_state=true", *overrides])


def _images(n=11, channels=3, side=36, seed=0):
    return torch.randint(0, 256, (n, channels, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("augmentation", ["none", "flip", "jitter", "flip+jitter"])
def test_batches_cropped_where_the_images_live_equal_the_cpu_path_bit_for_bit(augmentation):
    """Every batch of three epochs (the last one short), for several seeds: the gather on the images' device
    (here CPU tensors, as on a GPU) gives the same bytes as training_batch's numpy crops."""
    for seed, channels in ((0, 3), (7, 6)):  # 6 channels: a paired dataset, photo and input image stacked
        config = load_config(None, ["data.image_size=32", f"data.augmentation={augmentation}",
                                    "data.batch_size=4", f"seed={seed}", "generator.depth=5"])
        side = 36 if "jitter" in augmentation else 32
        images = _images(channels=channels, side=side, seed=seed)
        steps_per_epoch = 3  # 11 images, batch 4: 4, 4, 3
        flips_seen = set()
        for epoch, index in itertools.product(range(3), range(steps_per_epoch)):
            step = epoch * steps_per_epoch + index
            cpu = training_batch(images, config, epoch, index, step)
            gathered = device_training_batch(images, config, epoch, index, step)
            assert gathered.dtype == torch.uint8 and gathered.shape == cpu.shape == (
                3 if index == 2 else 4, channels, 32, 32)
            assert torch.equal(gathered, cpu), (augmentation, seed, epoch, index)
            assert gathered.is_contiguous()
            flips_seen.add(bool(torch.equal(cpu, cpu.flip(-1))))
        if augmentation != "none":  # the draws really crop and flip: consecutive steps differ
            a = training_batch(images, config, 0, 0, 0)
            b = training_batch(images, config, 0, 0, 1)
            assert not torch.equal(a, b)


def test_the_gather_crops_and_mirrors_as_written_out_by_hand():
    """crop_on_device against a crop and flip written out by indexing, for draws it makes itself."""
    images = _images(n=5, side=40, seed=3)
    rows = torch.tensor([4, 0, 2, 2])
    from bench.data.augmentation import draw_crops
    offsets, flips = draw_crops(4, "flip+jitter", 40, 32, torch.Generator().manual_seed(11))
    out = crop_on_device(images, rows, "flip+jitter", 32, torch.Generator().manual_seed(11))
    for k, (row, (top, left), flipped) in enumerate(zip(rows.tolist(), offsets, flips)):
        expected = images[row, :, top:top + 32, left:left + 32]
        assert torch.equal(out[k], expected.flip(-1) if flipped else expected)
    assert len(set(offsets)) > 1 and set(flips) == {True, False}  # seed 11 draws both, and several offsets
    assert torch.equal(out, augment(images, "flip+jitter", 32, torch.Generator().manual_seed(11), rows=rows))


def test_training_images_serve_the_same_batches_wherever_they_live():
    images = _images(side=36)
    config = load_config(None, ["data.image_size=32", "data.batch_size=4", "generator.depth=5"])
    host = TrainingImages(images, load_config(None, ["data.image_size=32", "data.batch_size=4", "generator.depth=5",
                                                     "compute.training_images=host"]), torch.device("cpu"))
    device = TrainingImages(images, load_config(None, ["data.image_size=32", "data.batch_size=4",
                                                       "generator.depth=5", "compute.training_images=device"]),
                            torch.device("cpu"))
    auto = TrainingImages(images, config, torch.device("cpu"))
    assert (host.resident, device.resident, auto.resident) == (False, True, False)  # auto: host on a CPU
    assert "resident on cpu" in device.placement and host.placement == auto.placement == "cpu"
    for step in range(6):
        epoch, index = divmod(step, 3)
        assert torch.equal(host.batch(epoch, index, step), device.batch(epoch, index, step))


def test_a_run_with_its_training_images_on_the_device_equals_one_on_the_host(image_folder, tmp_path):
    """The whole run, on CPU tensors: same weights, optimiser states, stats and metrics, bit for bit."""
    host = tiny(image_folder, "compute.training_images=host", "generator.dropout=true")
    device = tiny(image_folder, "compute.training_images=device", "generator.dropout=true")
    assert config_hash(host) == config_hash(device)  # speed only: the same run id
    train(host, tmp_path / "host")
    train(device, tmp_path / "device")
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("host", "device"))
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    assert a["opt_g"]["state"][0]["exp_avg"].equal(b["opt_g"]["state"][0]["exp_avg"])
    assert list(rundir.read_jsonl(tmp_path / "host" / "metrics.jsonl")) == \
        list(rundir.read_jsonl(tmp_path / "device" / "metrics.jsonl"))
    (difference,) = run_differences(tmp_path / "host", tmp_path / "device")  # every other file is equal
    assert difference.startswith("config.yaml: config: ")  # the knob's own value
    recorded = yaml.safe_load((tmp_path / "device" / "config.yaml").read_text())["environment"]["gpu_path"]
    assert recorded["training_images"] == "device" and recorded["training_batches"].startswith("resident on cpu")
    recorded = yaml.safe_load((tmp_path / "host" / "config.yaml").read_text())["environment"]["gpu_path"]
    assert recorded["training_batches"] == "cpu" and recorded["channels_last"] is False
    assert recorded["precision"] == "fp32" and recorded["packed"] is None


def test_channels_last_trains_resumes_bit_for_bit_and_stays_close_to_the_default_layout(image_folder, tmp_path):
    config = tiny(image_folder, "compute.channels_last=true", "generator.dropout=false")
    train(config, tmp_path / "whole")
    assert train(config, tmp_path / "resumed", stop_after_step=3)["state"] == "interrupted"
    train(config, tmp_path / "resumed")
    assert run_differences(tmp_path / "whole", tmp_path / "resumed") == []
    weights = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")["generator"]
    assert any(w.dim() == 4 and w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
               for w in weights.values())  # really stored NHWC

    default = tiny(image_folder, "generator.dropout=false")
    train(default, tmp_path / "default")
    first = [list(rundir.read_jsonl(tmp_path / name / "stats.jsonl"))[0] for name in ("whole", "default")]
    for key in ("loss_d_real", "loss_d_fake", "loss_g_adv", "loss_g_rec"):
        assert first[0][key] == pytest.approx(first[1][key], rel=1e-4)  # the same arithmetic, other kernels
    meta = yaml.safe_load((tmp_path / "whole" / "config.yaml").read_text())
    assert meta["environment"]["gpu_path"]["channels_last"] is True


def test_knobs_that_change_digits_change_the_run_id_and_the_defaults_keep_earlier_ids():
    base = load_config("bench/configs/demo.yaml")
    # The hashes these configs had before the compute section and tf32 existed (colorbench at commit 2391130):
    # at their defaults the new knobs leave every earlier run's id as it was.
    assert config_hash(base) == "87763f18063a"
    assert config_hash(load_config("bench/configs/demo.yaml", ["precision=bf16"])) == "7e2ca05e7a91"
    assert config_hash(load_config(None)) == "8d32925d806f"
    changed = {key: config_hash(load_config("bench/configs/demo.yaml", [key])) for key in (
        "compute.channels_last=true", "precision=tf32", "precision=bf16")}
    assert len(set(changed.values()) | {config_hash(base)}) == 4
    for speed_only in ("compute.training_images=device", "compute.training_images=host"):
        assert config_hash(load_config("bench/configs/demo.yaml", [speed_only])) == config_hash(base)
    assert config_hash(load_config("bench/configs/demo.yaml", ["compute.channels_last=false"])) == config_hash(base)


def test_tf32_needs_cuda_and_a_bad_knob_value_exits_2(image_folder, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("checks the error on a machine without CUDA")
    with pytest.raises(ConfigError, match="precision: tf32 runs on CUDA only"):
        train(tiny(image_folder, "precision=tf32"), tmp_path / "run")
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before the directory was claimed
    assert main(["train", "--set", "compute.training_images=gpu", "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert "compute.training_images: got 'gpu'; allowed: auto, device, host" in err and len(err.splitlines()) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_equal_the_cpu_path_and_the_math_flags_follow_the_config(monkeypatch):
    from bench.training.gpu_path import configure_math
    images = _images(side=36)
    config = load_config(None, ["data.image_size=32", "data.batch_size=4", "generator.depth=5"])
    on_gpu = images.cuda()
    for step in range(6):
        epoch, index = divmod(step, 3)
        assert torch.equal(device_training_batch(on_gpu, config, epoch, index, step).cpu(),
                           training_batch(images, config, epoch, index, step))
    configure_math(load_config(None, ["precision=tf32"]), torch.device("cuda"))
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.benchmark
    configure_math(config, torch.device("cuda"))
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    monkeypatch.setenv("COLORBENCH_REPRODUCIBLE", "1")
    configure_math(config, torch.device("cuda"))
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    assert torch.are_deterministic_algorithms_enabled()
    monkeypatch.delenv("COLORBENCH_REPRODUCIBLE")
    configure_math(config, torch.device("cuda"))
    assert not torch.are_deterministic_algorithms_enabled()
