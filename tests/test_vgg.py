"""VGG-19 loader: torchvision key layout, shape checks, where the file is looked for, random mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autalk.losses import perceptual_loss
from autalk.vgg import (
    LAYER_NAMES,
    RANDOM_SOURCE,
    VGG19_FILENAME,
    VGG19_URL,
    VGG19Features,
    VGGWeightsMissingError,
    default_weights_path,
    load_vgg19_feature_weights,
)

# torchvision vgg19().features: conv index -> (out, in) channels. Written out independently of autalk.vgg.
TORCHVISION_CONVS = {
    0: (64, 3),
    2: (64, 64),
    5: (128, 64),
    7: (128, 128),
    10: (256, 128),
    12: (256, 256),
    14: (256, 256),
    16: (256, 256),
    19: (512, 256),
    21: (512, 512),
    23: (512, 512),
    25: (512, 512),
    28: (512, 512),
    30: (512, 512),
    32: (512, 512),
    34: (512, 512),
}


def fake_torchvision_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, (cout, cin) in TORCHVISION_CONVS.items():
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.01
        state[f"features.{i}.bias"] = torch.randn(cout, generator=g) * 0.01
    # classifier.* exists in the real file and must be ignored (kept tiny here)
    state.update({"classifier.0.weight": torch.zeros(4, 8), "classifier.0.bias": torch.zeros(4)})
    return state


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return fake_torchvision_state()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("vgg") / VGG19_FILENAME
    torch.save(state, path)
    return path


def test_layer_names_follow_torchvision_indices() -> None:
    assert len(LAYER_NAMES) == 37
    assert LAYER_NAMES[0] == "conv1_1" and LAYER_NAMES[3] == "relu1_2" and LAYER_NAMES[4] == "pool1"
    assert LAYER_NAMES[34] == "conv5_4" and LAYER_NAMES[35] == "relu5_4" and LAYER_NAMES[36] == "pool5"
    assert [i for i, n in enumerate(LAYER_NAMES) if n.startswith("conv")] == list(TORCHVISION_CONVS)


def test_loads_a_correctly_shaped_file(weights_file: Path, state: dict[str, torch.Tensor]) -> None:
    vgg = VGG19Features(weights=weights_file)
    assert vgg.is_pretrained and vgg.weights_source == f"ImageNet ({weights_file})"
    for i in TORCHVISION_CONVS:
        assert torch.equal(vgg.features[i].weight, state[f"features.{i}.weight"])
        assert torch.equal(vgg.features[i].bias, state[f"features.{i}.bias"])
    assert not any(p.requires_grad for p in vgg.parameters())
    assert set(load_vgg19_feature_weights(weights_file)) == {
        k[len("features.") :] for k in state if "features" in k
    }


def test_default_location_is_torch_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, weights_file: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    expected = tmp_path / "th" / "hub" / "checkpoints" / VGG19_FILENAME
    assert default_weights_path() == expected
    with pytest.raises(VGGWeightsMissingError) as err:
        VGG19Features()
    msg = str(err.value)
    assert VGG19_URL in msg and str(expected) in msg and "vgg_weights: random" in msg
    expected.parent.mkdir(parents=True)
    expected.symlink_to(weights_file)
    assert VGG19Features().weights_source == f"ImageNet ({expected})"


def test_missing_explicit_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(VGGWeightsMissingError, match="nowhere.pth"):
        VGG19Features(weights=tmp_path / "nowhere.pth")


def test_rejects_wrong_shapes(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    bad = dict(state)
    bad["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    path = tmp_path / "wrong.pth"
    torch.save(bad, path)
    with pytest.raises(
        ValueError, match=r"wrong\.pth has VGG-19 keys with wrong shapes.*features\.5\.weight"
    ):
        VGG19Features(weights=path)


def test_rejects_other_files(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    vgg16ish = {k: v for k, v in state.items() if k not in ("features.34.weight", "features.34.bias")}
    vgg16ish["features.33.weight"] = torch.zeros(1)
    path = tmp_path / "vgg16.pth"
    torch.save(vgg16ish, path)
    with pytest.raises(
        ValueError, match=r"vgg16\.pth is not a torchvision VGG-19.*features\.34\.weight.*features\.33"
    ):
        load_vgg19_feature_weights(path)
    listed = tmp_path / "list.pth"
    torch.save([1, 2], listed)
    with pytest.raises(ValueError, match=r"list\.pth: expected a VGG-19 state_dict"):
        load_vgg19_feature_weights(listed)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"garbage\.pth: cannot read"):
        load_vgg19_feature_weights(garbage)


def test_random_weights_say_so_loudly() -> None:
    with pytest.warns(UserWarning, match="NOT ImageNet"):
        vgg = VGG19Features(layers=("relu1_2", "relu2_2"), weights="random")
    assert vgg.weights_source == RANDOM_SOURCE == "random (NOT ImageNet)"
    assert not vgg.is_pretrained
    assert "NOT ImageNet" in repr(vgg)


@pytest.fixture(scope="module")
def random_vgg() -> VGG19Features:
    with pytest.warns(UserWarning):
        return VGG19Features(weights="random")


def test_imagenet_normalisation_of_minus_one_to_one(random_vgg: VGG19Features) -> None:
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    lo = random_vgg.normalize(torch.full((1, 3, 1, 1), -1.0)).flatten()
    hi = random_vgg.normalize(torch.full((1, 3, 1, 1), 1.0)).flatten()
    torch.testing.assert_close(lo, -mean / std)
    torch.testing.assert_close(hi, (1 - mean) / std)


def test_feature_shapes_and_frozen(random_vgg: VGG19Features) -> None:
    x = (torch.rand(1, 3, 64, 64) * 2 - 1).requires_grad_(True)
    feats = random_vgg(x)
    assert [tuple(f.shape) for f in feats] == [
        (1, 64, 64, 64),
        (1, 128, 32, 32),
        (1, 256, 16, 16),
        (1, 512, 8, 8),
        (1, 512, 4, 4),
    ]
    random_vgg.train()
    assert not random_vgg.training  # stays in eval mode
    loss = perceptual_loss(random_vgg, x, torch.zeros_like(x))
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert perceptual_loss(random_vgg, x, x.detach()).item() == 0.0
    with pytest.raises(ValueError, match="layers must be distinct names"):
        VGG19Features(layers=("relu9_9",), weights="random")
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        random_vgg(torch.zeros(1, 1, 8, 8))
