"""autalk.train (the shared trainer) and the two pretraining stages, on a tiny in-memory cache."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tinycache import make_cache, tiny_params, write_params

from autalk import stages
from autalk.checkpoint import ConfigMismatchError, load_checkpoint
from autalk.profiles import MissingStageError
from autalk.train import CHECKPOINT, LOG, NonFiniteLossError, fit, rng_state, set_rng_state

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("run")
    make_cache(r / "01_preprocess")
    return r


def _stage(run: Path, cls=stages.Audio2AUStage, **over):
    p = tiny_params(**over)
    name = "au_classifier" if cls is stages.AUClassifierStage else "audio2au"
    return cls(run / "01_preprocess", stages.model_config(p), stages.train_config(p, name))


def test_training_lowers_l_au_and_beats_the_prior(run, tmp_path):
    torch.manual_seed(0)
    st = _stage(run, a2au_epochs=8, a2au_lr=3e-3)
    res = fit(st, tmp_path / "a2au", progress=False)
    first, last = res.history[0]["L_au"], res.history[-1]["L_au"]
    assert last < 0.7 * first, (first, last)
    rep = stages.classifier_report(st.model, run / "01_preprocess", "mfcc", st.dataset())
    assert rep["test"]["mean_f1"] > rep["trivial_test"]["mean_f1"] + 0.2
    rows = list(csv.DictReader(open(tmp_path / "a2au" / LOG)))
    assert rows and {"epoch", "step", "L_au", "frames_per_s", "data_wait_share"} <= set(rows[0])
    assert list((tmp_path / "a2au" / "tb").glob("events.out.tfevents.*")), "TensorBoard events written"


def test_au_classifier_stage_sees_lower_faces(run, tmp_path):
    st = _stage(run, stages.AUClassifierStage, aucls_epochs=1)
    batch = st.dataset()[[0, 1, 2]]
    assert batch["lower"].shape == (3, 3, 16, 32) and batch["au"].shape == (3, 5)
    assert float(batch["lower"].min()) >= -1 and float(batch["lower"].max()) <= 1
    terms = st.train_step(batch, 0)
    assert set(terms) == {"L_au", "L_bce", "L_dice"}


def test_checkpoint_round_trip_with_optimizer_and_rng(run, tmp_path):
    st = _stage(run, a2au_epochs=1)
    fit(st, tmp_path / "a", progress=False)
    ck = load_checkpoint(tmp_path / "a" / CHECKPOINT)
    assert ck.extra["epoch"] == 0 and ck.extra["complete"] and ck.step == ck.extra["history"][0]["steps"]
    assert {"python", "numpy", "torch"} <= set(ck.extra["rng"]) and ck.extra["data_order"]["sampler"]
    st2 = _stage(run, a2au_epochs=1)
    load_checkpoint(tmp_path / "a" / CHECKPOINT, modules=st2.modules, optimizers=st2.optimizers)
    for (k, a), b in zip(st.model.state_dict().items(), st2.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    s1, s2 = st.optimizers["audio2au"].state_dict(), st2.optimizers["audio2au"].state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert all(torch.equal(s1["state"][i]["exp_avg"], s2["state"][i]["exp_avg"]) for i in s1["state"])
    state = rng_state()
    a = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(a, torch.rand(3))


def test_resume_continues_and_extending_epochs_is_allowed(run, tmp_path):
    out = tmp_path / "r"
    fit(_stage(run, a2au_epochs=1), out, progress=False)
    res = fit(_stage(run, a2au_epochs=2), out, progress=False)
    assert res.resumed_from == 0 and res.epochs_run == [1] and len(res.history) == 2
    assert fit(_stage(run, a2au_epochs=2), out, progress=False).epochs_run == []  # already complete


def test_checkpoint_of_another_config_is_refused_with_a_diff(run, tmp_path):
    out = tmp_path / "c"
    fit(_stage(run, a2au_epochs=1), out, progress=False)
    with pytest.raises(ConfigMismatchError, match=r"train.lr: checkpoint 0.001, expected 0.005"):
        fit(_stage(run, a2au_epochs=2, a2au_lr=5e-3), out, progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(run, tmp_path):
    out = tmp_path / "n"
    fit(_stage(run, a2au_epochs=1), out, progress=False)
    good = (out / CHECKPOINT).read_bytes()
    st = _stage(run, a2au_epochs=3)
    orig = st.logits
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        out_ = orig(batch)
        return out_ * float("nan") if calls["n"] == 3 else out_

    st.logits = poisoned
    with pytest.raises(NonFiniteLossError, match=r"'L_au' is nan .* epoch 2, step \d+.*last good checkpoint"):
        fit(st, out, progress=False)
    assert (out / CHECKPOINT).read_bytes() == good


def test_missing_preprocessing_names_the_notebook(tmp_path):
    with pytest.raises(MissingStageError, match="01_preprocessing.ipynb"):
        stages.pretrain("audio2au", tmp_path, tiny_params(), progress=False)
    with pytest.raises(MissingStageError, match=r"02_audio2au_pretraining.ipynb.*autalk train audio2au"):
        stages.load_pretrained(tmp_path, "audio2au")


def _cli(cfg: Path, run: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "autalk",
        "train",
        "audio2au",
        "--config",
        str(cfg),
        "--run",
        str(run),
        "--quiet",
        *extra,
    ]


def _final_state(run: Path):
    ck = load_checkpoint(run / "02_audio2au" / CHECKPOINT)
    rows = [(r["step"], r["L_au"]) for r in csv.DictReader(open(run / "02_audio2au" / LOG))]
    return ck.state_dicts["audio2au"], rows


def _copy_cache(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    (dst / "01_preprocess").symlink_to(src / "01_preprocess", target_is_directory=True)
    return dst


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(run, tmp_path):
    cfg = write_params(tmp_path / "p.yaml", a2au_epochs=4, a2au_batch=4)
    a, b = _copy_cache(run, tmp_path / "a"), _copy_cache(run, tmp_path / "b")
    subprocess.run(_cli(cfg, a), check=True, env=ENV, capture_output=True, timeout=300)
    proc = subprocess.Popen(_cli(cfg, b), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = b / "02_audio2au" / CHECKPOINT
    deadline = time.time() + 240
    while not ck.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # well into epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(ck).extra["epoch"]
    assert killed_at < 3, "the run finished before it could be killed: make epochs longer"
    subprocess.run(_cli(cfg, b), check=True, env=ENV, capture_output=True, timeout=300)
    wa, la = _final_state(a)
    wb, lb = _final_state(b)
    assert la == lb, "losses after resume differ from the uninterrupted run's"
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(run, tmp_path):
    cfg = write_params(tmp_path / "p.yaml", a2au_epochs=2)
    r = _copy_cache(run, tmp_path / "d")
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(worker),
        str(cfg),
        str(r),
    ]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    w0 = torch.load(r / "rank0.pt", weights_only=True)
    w1 = torch.load(r / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    assert (r / "02_audio2au" / CHECKPOINT).is_file() and (r / "02_audio2au" / LOG).is_file()
    ck = load_checkpoint(r / "02_audio2au" / CHECKPOINT)
    assert ck.extra["data_order"]["world"] == 2
