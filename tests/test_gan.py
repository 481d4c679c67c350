"""Stage 04 (the GAN) on a tiny cache: steps, phases, fine-tuning groups, checkpoints, evaluation."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from tinycache import make_cache, tiny_params, write_params

from autalk import stages
from autalk.checkpoint import load_checkpoint
from autalk.cli import main
from autalk.profiles import MissingStageError
from autalk.train import CHECKPOINT, fit


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("ganrun")
    make_cache(r / "01_preprocess")
    p = tiny_params(a2au_epochs=1, aucls_epochs=1)
    stages.pretrain("audio2au", r, p, progress=False)
    stages.pretrain("au_classifier", r, p, progress=False)
    return r


def _stage(run: Path, **over) -> stages.GANStage:
    return stages.build_gan_stage(run, tiny_params(**over))


def test_generator_step_lowers_l_rec_on_a_fixed_batch(run):
    torch.manual_seed(0)
    st = _stage(run, gan_epochs_phase1=1, gan_epochs_phase2=1)
    batch = st.dataset()[[0, 1, 2, 3]]
    first = [float(st.train_step(batch, epoch=0)["L_rec"]) for _ in range(25)]
    assert first[-1] < 0.7 * first[0], first


def test_phase_two_adds_the_discriminator(run):
    st = _stage(run, gan_epochs_phase1=1, gan_epochs_phase2=1)
    batch = st.dataset()[[0, 1]]
    d_before = [p.clone() for p in st.discriminator.parameters()]
    p1 = st.train_step(batch, epoch=0)
    assert "L_D" not in p1 and "L_adv" not in p1
    assert all(torch.equal(a, b) for a, b in zip(d_before, st.discriminator.parameters(), strict=True))
    p2 = st.train_step(batch, epoch=1)
    assert {"L_D", "L_adv"} <= set(p2)
    assert not all(torch.equal(a, b) for a, b in zip(d_before, st.discriminator.parameters(), strict=True))


def test_fine_tuning_rates_reach_their_parameter_groups(run):
    st = _stage(run, finetune_lr_audio2au=1e-6, finetune_lr_au_classifier=1e-7)
    groups = {g["name"]: g for g in st.optimizers["generator"].param_groups}
    assert groups["generator"]["lr"] == pytest.approx(2e-3)
    assert groups["audio2au"]["lr"] == pytest.approx(1e-6) and groups["au_classifier"]["lr"] == pytest.approx(
        1e-7
    )
    a2au = {id(p) for p in st.generator.audio2au.parameters()}
    assert {id(p) for p in groups["audio2au"]["params"]} == a2au
    assert not a2au & {id(p) for p in groups["generator"]["params"]}
    assert {id(p) for p in groups["au_classifier"]["params"]} == {
        id(p) for p in st.au_classifier.parameters()
    }
    before = [p.clone() for p in st.generator.audio2au.parameters()]
    st.train_step(st.dataset()[[0, 1]], epoch=0)
    moved = max(
        float((a - b.detach()).abs().max())
        for a, b in zip(before, st.generator.audio2au.parameters(), strict=True)
    )
    assert 0 < moved < 1e-4  # Adam moves each weight by about lr per step

    frozen = _stage(run, finetune_lr_audio2au=0.0, finetune_lr_au_classifier=0.0)
    names = [g["name"] for g in frozen.optimizers["generator"].param_groups]
    assert names == ["generator"]
    assert not any(p.requires_grad for p in frozen.generator.audio2au.parameters())
    before = [p.clone() for p in frozen.generator.audio2au.parameters()]
    frozen.train_step(frozen.dataset()[[0, 1]], epoch=0)
    assert all(torch.equal(a, b) for a, b in zip(before, frozen.generator.audio2au.parameters(), strict=True))


def test_checkpoint_holds_d_and_phase_two_resumes_as_phase_two(run, tmp_path):
    out = tmp_path / "g"
    fit(_stage(run, gan_epochs_phase1=1, gan_epochs_phase2=0), out, progress=False)
    ck = load_checkpoint(out / CHECKPOINT)
    assert {"generator", "discriminator", "au_classifier"} <= set(ck.state_dicts)
    assert {"generator", "discriminator"} <= set(ck.optimizers)
    assert "L_D" not in ck.extra["history"][0]
    res = fit(_stage(run, gan_epochs_phase1=1, gan_epochs_phase2=1), out, progress=False)
    assert res.resumed_from == 0 and "L_D" in res.history[1] and "L_adv" in res.history[1]


def test_generator_without_pretraining_names_the_notebook(tmp_path):
    make_cache(tmp_path / "01_preprocess")
    with pytest.raises(MissingStageError, match="02_audio2au_pretraining.ipynb"):
        stages.build_gan_stage(tmp_path, tiny_params())


def test_cli_train_generator_then_evaluate(run, tmp_path, capsys):
    cfg = write_params(tmp_path / "p.yaml", gan_epochs_phase1=1, gan_epochs_phase2=1, max_batches=2)
    assert main(["train", "generator", "--config", str(cfg), "--run", str(run), "--quiet"]) == 0
    assert "generator (full)" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(run), "--quiet", "--out", str(tmp_path / "ev")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "ev" / "test_summary.csv")))
    gt = {r["metric"]: float(r["mean"]) for r in rows if r["method"] == "ground_truth"}
    assert gt["ssim"] == pytest.approx(1.0) and gt["lmd_px"] == pytest.approx(0.0) and gt["psnr"] == 100.0
    assert {r["method"] for r in rows} == {"ours", "copy_identity", "ground_truth"}
    clips = list(csv.DictReader(open(tmp_path / "ev" / "test_clips.csv")))
    assert len(clips) == 3 * 3  # 3 test clips x (ours, copy_identity, ground_truth)


def test_ablation_rows_and_baselines_train(run, tmp_path):
    p = tiny_params(gan_epochs_phase1=1, gan_epochs_phase2=1, max_batches=1)
    for kw in (
        {"ablation": "baseline"},
        {"ablation": "+au"},
        {"baseline": "cran"},
        {"baseline": "speech2vid"},
    ):
        res = stages.train_generator(run, p, progress=False, samples=False, **kw)
        assert Path(res["out_dir"]).parent.parent.name == "05_ablations" and res["history"], kw
        gen, _, ck = stages.load_generator(Path(res["out_dir"]) / CHECKPOINT)
        assert ck.config["baseline"] == kw.get("baseline")
