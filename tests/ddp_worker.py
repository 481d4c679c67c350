"""Run under torchrun by tests/test_train.py: stage 02 with DistributedDataParallel (gloo, CPU), then every
rank saves the weights of its own replica so the test can compare them."""

import sys
from pathlib import Path

import torch
import yaml

from autalk import stages
from autalk.train import fit, init_distributed

cfg, run = Path(sys.argv[1]), Path(sys.argv[2])
params = yaml.safe_load(cfg.read_text())
d = init_distributed("cpu")
st = stages.Audio2AUStage(
    run / "01_preprocess", stages.model_config(params), stages.train_config(params, "audio2au")
)
fit(st, run / "02_audio2au", progress=False, dist=d)
torch.save(st.model.state_dict(), run / f"rank{d.rank}.pt")
