"""Notebook contracts that nbval cannot check: a stage whose input is missing stops and names the notebook
to run first, and every notebook's parameters cell matches the keys the profiles provide."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from autalk.profiles import PROFILES, load_profile

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _parameters(nb_path: Path) -> dict[str, object]:
    nb = json.loads(nb_path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    values = {}
    for node in ast.parse("".join(cell["source"])).body:
        assert isinstance(node, ast.AnnAssign), f"{nb_path.name}: parameters must be typed assignments"
        assert node.annotation.id in ("int", "float", "str", "bool"), f"{nb_path.name}: flat scalars only"
        values[node.target.id] = ast.literal_eval(node.value)
    return values


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_the_quick_profile_and_every_profile_sets_them(nb_path):
    params = _parameters(nb_path)
    quick = load_profile("quick")
    for name, default in params.items():
        for profile in PROFILES:
            assert name in load_profile(profile), f"params/{profile}.yaml lacks {name} ({nb_path.name})"
        assert default == quick[name], f"{nb_path.name}: default {name}={default!r} differs from quick.yaml"


def test_stage_with_missing_input_names_the_notebook_to_run_first(tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.setenv("AUTALK_ROOT", str(tmp_path))  # the kernel's runs/ and figures/ go to tmp_path

    out = tmp_path / "01.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(str(ROOT / "notebooks" / "01_preprocessing.ipynb"), str(out),
                            kernel_name="python3", parameters={"profile": "no-such-run"}, cwd=str(ROOT),
                            progress_bar=False)
    assert "00_teaching_corpus.ipynb" in str(e.value) and "MissingStageError" in str(e.value)
    assert not (tmp_path / "runs" / "no-such-run" / "01_preprocess" / "manifest.json").exists()
    assert not (ROOT / "runs" / "no-such-run").exists()
