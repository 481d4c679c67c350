"""The paper's experiments (sections 4.3-4.5): Table 1 (baselines) and Table 2 (ablation ladder) rows,
trained in the same conditions and scored on the same test clips (notebooks 05 and 06).

Every row is one ``stages.train_generator(..., ablation=ROW)`` or ``(..., baseline=NAME)`` run, i.e. one
``autalk train generator --ablation ROW`` (or ``--baseline NAME``), writing
``runs/<p>/05_ablations/<row>/seed<N>/``.

A finished row is reused (its checkpoint says it is complete; its scores are cached in ``eval/``), so a
single row can be rerun alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autalk import evaluate, metrics, paper
from autalk.config import TABLE2_LABELS
from autalk.fsutil import atomic_write_json, atomic_write_text

TABLE2_ROWS = ("baseline", "+per", "+id", "+adv", "+au", "full")
TABLE1_ROWS = ("cran", "speech2vid", "baseline", "full")
BASELINES = ("cran", "speech2vid")
LABELS = {**TABLE2_LABELS, "cran": "CRAN-like", "speech2vid": "Speech2Vid-like"}
PAPER_TABLE1_KEYS = {
    "cran": "CRAN",
    "speech2vid": "Speech2Vid",
    "baseline": "Baseline (Lrec)",
    "full": "Proposed",
}
TABLE_KEYS = (
    "psnr",
    "ssim",
    "lmd_px",
    "mouth_r",
    "au_det_f1",
    "au_det_acc",
    "au_cls_f1",
    "au_cls_acc",
    "lse_d",
    "lse_c",
    "csim",
    "cpbd",
)
#: CSIM and CPBD are measured on every QUALITY_STRIDE-th frame: dlib's face-recognition ResNet is the
#: slowest metric here (tens of ms a frame on a CPU), and neighbouring frames are near duplicates.
QUALITY_STRIDE = 5
#: Bumped when the per-clip columns change, so cached ``eval/test_clips_rows.json`` files are rescored.
SCORES_VERSION = 2


def quality_columns(frames: np.ndarray, clip: dict[str, Any],
                    stride: int = QUALITY_STRIDE) -> dict[str, float]:
    """Identity and sharpness of generated frames ``(T,S,S,3) uint8``: ``csim`` (cosine similarity of dlib
    face embeddings with the identity image, the clip's first real frame, which every generator here gets
    as I_id) and ``cpbd`` (:func:`metrics.cpbd`, mean over frames), both on every ``stride``-th frame."""
    sub = np.asarray(frames)[:: max(1, int(stride))]
    cp = [metrics.cpbd(f) for f in sub]
    return {"csim": metrics.csim(clip["frames"][0], sub),
            "cpbd": float(np.nanmean(cp)) if np.isfinite(cp).any() else float("nan")}


def row_kwargs(row: str) -> dict[str, str]:
    """``train_generator`` keyword for a row: a baseline name or a Table 2 row."""
    return {"baseline": row} if row in BASELINES else {"ablation": row}


def train_rows(
    run: str | os.PathLike[str],
    params: dict[str, Any],
    rows: Sequence[str],
    seeds: int = 1,
    device: str = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train (or reuse) every row x seed in the ablation budget; returns their train summaries."""
    from autalk.stages import train_generator

    out = []
    base = int(params.get("seed", 0))
    for row in rows:
        for s in range(seeds):
            p = {**params, "seed": base + s}
            res = train_generator(run, p, device=device, progress=progress, samples=False, **row_kwargs(row))
            out.append({"row": row, "seed": base + s, **res})
    return out


def row_checkpoint(run: str | os.PathLike[str], row: str, seed: int) -> Path:
    from autalk.stages import gan_dir

    return gan_dir(run, **row_kwargs(row), seed=seed) / "checkpoint.pt"


def evaluate_rows(
    run: str | os.PathLike[str],
    rows: Sequence[str],
    seeds: Sequence[int],
    max_clips: int = 0,
    device: str = "cpu",
    extra: Callable[[np.ndarray, dict[str, Any]], dict[str, float]] | None = None,
    progress: bool = True,
    quality: bool = True,
) -> dict[str, Any]:
    """Score every trained row (and the copy-identity / ground-truth references) on the same test clips.

    ``extra(fake_frames, clip) -> {metric: value}`` adds per-clip metrics (e.g. LSE-D / LSE-C of the sync
    expert); ``quality`` adds CSIM and CPBD (:func:`quality_columns`). Per-clip rows are cached in each
    row's ``eval/test_clips_rows.json`` and reused when the checkpoint has not changed since.
    Returns {"rows": per-clip dicts, "clips": the test clips}."""
    from autalk.stages import cache_dir, load_generator, load_pretrained

    cache = cache_dir(run)
    clips = evaluate.load_split(cache, "test", max_clips)
    memo: dict[str, Any] = {"landmarks": [metrics.crop_landmarks(c["frames"]) for c in clips]}
    detector = evaluate.landmark_detector(cache)
    try:
        classifier, _ = load_pretrained(run, "au_classifier", device=device)
    except FileNotFoundError:
        classifier = None
    key = {"clips": [c["clip_id"] for c in clips], "extra": extra is not None, "quality": quality,
           "version": SCORES_VERSION}

    def more(frames: np.ndarray, clip: dict[str, Any]) -> dict[str, float]:
        return {**(extra(frames, clip) if extra is not None else {}),
                **(quality_columns(frames, clip) if quality else {})}

    all_rows: list[dict[str, Any]] = []
    for row in rows:
        for seed in seeds:
            ckpt = row_checkpoint(run, row, seed)
            if not ckpt.is_file():
                raise FileNotFoundError(
                    f"{ckpt} not found: train the row first (notebook 05, or `autalk train "
                    f"generator --{'baseline' if row in BASELINES else 'ablation'} {row}`)"
                )
            cached = ckpt.parent / "eval" / "test_clips_rows.json"
            if cached.is_file() and cached.stat().st_mtime >= ckpt.stat().st_mtime:
                saved = json.loads(cached.read_text())
                if saved["key"] == key:
                    all_rows += saved["rows"]
                    continue
            gen, norm, _ = load_generator(ckpt, device)
            fakes = evaluate.generate_split(gen, norm, clips, progress=False)
            mine = evaluate.score_clips(fakes, clips, detector, classifier, row, progress, memo["landmarks"])
            for r, fake, clip in zip(mine, fakes, clips, strict=True):
                r["seed"] = seed
                r.update(more(fake, clip))
            atomic_write_json(cached, {"key": key, "rows": mine}, default=float)
            all_rows += mine
    for ref, make in evaluate._reference_makers().items():
        refs = evaluate.score_clips(
            [make(c) for c in clips], clips, detector, classifier, ref, progress, memo["landmarks"]
        )
        for r, clip in zip(refs, clips, strict=True):
            r["seed"] = -1
            r.update(more(make(clip), clip))
        all_rows += refs
    return {"rows": all_rows, "clips": clips}


def summarise_rows(rows: Sequence[dict[str, Any]], keys: Sequence[str] = TABLE_KEYS) -> list[dict[str, Any]]:
    """Per method: mean over clips with a bootstrap 95% CI (all seeds' clips pooled), and the mean and std
    over seeds of the per-seed means."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        seeds = sorted({r["seed"] for r in mine})
        entry: dict[str, Any] = {
            "method": method,
            "label": LABELS.get(method, method),
            "n_seeds": len(seeds),
            "n_clips": len({r["clip_id"] for r in mine}),
        }
        for k in keys:
            vals = [float(r.get(k, np.nan)) for r in mine]
            if not np.isfinite(vals).any():
                continue
            mean, lo, hi = metrics.bootstrap_ci(vals)
            per_seed = [np.nanmean([float(r.get(k, np.nan)) for r in mine if r["seed"] == s]) for s in seeds]
            entry.update(
                {
                    k: mean,
                    f"{k}_ci_low": lo,
                    f"{k}_ci_high": hi,
                    f"{k}_seed_std": float(np.std(per_seed)) if len(seeds) > 1 else 0.0,
                }
            )
        out.append(entry)
    return out


def markdown_table(
    summary: Sequence[dict[str, Any]],
    keys: Sequence[str],
    paper_rows: dict[str, tuple] | None,
    paper_cols: Sequence[str] = ("PSNR", "SSIM", "F1", "Acc %"),
    title: str = "",
    note: str = "",
) -> str:
    """A Markdown table: one line per method, ``mean [95% CI]`` (``± std`` over seeds when > 1 seed), and
    the paper's numbers in extra columns (labelled as another corpus)."""
    head = ["method", *keys] + ([f"paper {c}" for c in paper_cols] if paper_rows else [])
    lines = [f"**{title}**" if title else "", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        cells = [e["label"]]
        for k in keys:
            if k not in e:
                cells.append("n/a")
                continue
            c = f"{e[k]:.3f} [{e[f'{k}_ci_low']:.3f}, {e[f'{k}_ci_high']:.3f}]"
            if e["n_seeds"] > 1:
                c += f" ± {e[f'{k}_seed_std']:.3f}"
            cells.append(c)
        if paper_rows:
            pr = paper_rows.get(e["method"])
            cells += [f"{v:g}" for v in pr] if pr else ["—"] * len(paper_cols)
        lines.append("| " + " | ".join(cells) + " |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def write_table(
    summary: Sequence[dict[str, Any]],
    name: str,
    keys: Sequence[str],
    paper_rows: dict[str, tuple] | None,
    title: str,
    note: str,
    folder: str | os.PathLike[str] = "figures",
) -> tuple[Path, Path]:
    """``figures/<name>.csv`` (every column) and ``figures/<name>.md`` (the readable table)."""
    folder = Path(folder)
    csv_path, md_path = folder / f"{name}.csv", folder / f"{name}.md"
    metrics.write_csv(list(summary), csv_path)
    atomic_write_text(md_path, markdown_table(summary, keys, paper_rows, title=title, note=note))
    return csv_path, md_path


def paper_table1() -> dict[str, tuple]:
    return {row: paper.TABLE1_GRID[key] for row, key in PAPER_TABLE1_KEYS.items()}


def paper_table2() -> dict[str, tuple]:
    return dict(paper.TABLE2_GRID)
