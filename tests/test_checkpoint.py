"""Checkpoint round trip, config mismatch diff, safe loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autalk.checkpoint import (
    FORMAT,
    CheckpointError,
    ConfigMismatchError,
    config_diff,
    load_checkpoint,
    save_checkpoint,
)
from autalk.config import ExperimentConfig, ablation_config, tiny_model_config
from autalk.networks import Generator


class Payload:
    """Anything that is not plain data: weights_only loading must refuse to rebuild it."""

    def __init__(self) -> None:
        self.note = "would run arbitrary code on unpickling"


def _experiment(**model_overrides: object) -> ExperimentConfig:
    row = ablation_config("full", image_size=64, vgg_weights="random")
    return ExperimentConfig(name=row.name, model=tiny_model_config(**model_overrides), loss=row.loss)


def _trained(cfg: ExperimentConfig, seed: int) -> tuple[Generator, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    gen = Generator(cfg.model)
    opt = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    out = gen(torch.zeros(1, 3, 64, 64), torch.randn(1, 2, 12, 28))
    out.frames.abs().mean().backward()
    opt.step()
    return gen, opt


def test_round_trip(tmp_path: Path) -> None:
    cfg = _experiment()
    gen, opt = _trained(cfg, seed=0)
    path = save_checkpoint(
        tmp_path / "run" / "step12.pt",
        {"generator": gen},
        cfg,
        step=12,
        optimizers={"generator": opt},
        extra={"psnr": 21.5},
    )
    assert path.is_file() and not list(path.parent.glob("*.tmp"))

    gen2, opt2 = _trained(cfg, seed=1)
    ckpt = load_checkpoint(
        path, expected_config=cfg, modules={"generator": gen2}, optimizers={"generator": opt2}
    )
    assert ckpt.step == 12 and ckpt.extra == {"psnr": 21.5}
    assert ExperimentConfig.from_dict(ckpt.config) == cfg
    for (k, a), b in zip(gen.state_dict().items(), gen2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert torch.equal(s1[0]["exp_avg"], s2[0]["exp_avg"])
    gen.eval(), gen2.eval()
    identity, mfcc = torch.rand(1, 3, 64, 64), torch.randn(1, 3, 12, 28)
    with torch.no_grad():
        assert torch.equal(gen(identity, mfcc).frames, gen2(identity, mfcc).frames)


def test_file_is_plain_data_for_weights_only(tmp_path: Path) -> None:
    cfg = _experiment()
    gen, _ = _trained(cfg, seed=0)
    path = save_checkpoint(tmp_path / "c.pt", {"generator": gen}, cfg, step=1)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and isinstance(raw["config_json"], str)


def test_mismatched_config_is_refused_with_a_diff(tmp_path: Path) -> None:
    cfg = _experiment()
    gen, _ = _trained(cfg, seed=0)
    path = save_checkpoint(tmp_path / "c.pt", {"generator": gen}, cfg, step=3)
    other = ExperimentConfig(name="full", model=tiny_model_config(image_size=112), loss=cfg.loss)
    target = Generator(other.model)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ConfigMismatchError) as err:
        load_checkpoint(path, expected_config=other, modules={"generator": target})
    msg = str(err.value)
    assert str(path) in msg and "1 field(s) differ" in msg
    assert "model.image_size: checkpoint 64, expected 112" in msg
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in before.items())  # untouched

    assert config_diff({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": [1, 2], "d": 0}}) == [
        "a.b: checkpoint 1, expected 2",
        "a.d: checkpoint (no such field), expected 0",
    ]


def test_refuses_unsafe_and_foreign_files(tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": FORMAT, "payload": Payload()}, unsafe)
    with pytest.raises(CheckpointError, match=r"unsafe\.pt: not a safe autalk checkpoint"):
        load_checkpoint(unsafe)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pt: not an autalk checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt")


def test_module_mismatch_names_file_and_module(tmp_path: Path) -> None:
    cfg = _experiment()
    gen, _ = _trained(cfg, seed=0)
    path = save_checkpoint(tmp_path / "c.pt", {"generator": gen}, cfg, step=1)
    with pytest.raises(CheckpointError, match=r"has no module 'discriminator'; it holds \['generator'\]"):
        load_checkpoint(path, modules={"discriminator": gen})
    wider = Generator(tiny_model_config(rnn_hidden=48))
    with pytest.raises(CheckpointError, match=r"c\.pt: module 'generator' does not fit"):
        load_checkpoint(path, modules={"generator": wider})
