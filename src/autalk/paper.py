"""The paper's reported numbers (Chen et al., BMVC 2021), for printing beside ours.

They were measured on GRID / TCD-TIMIT with OpenFace labels; this project's defaults use the teaching
corpus, so they are printed as a reference for the *shape* of the results, never as comparable values.
"""

from __future__ import annotations

# Table 4: the pretrained AU classifier on real GRID images. AU -> (F1, accuracy %).
TABLE4_TRAIN = {
    "AU10": (0.971, 96.81),
    "AU14": (0.896, 95.54),
    "AU20": (0.955, 95.13),
    "AU25": (0.983, 97.16),
    "AU26": (0.920, 91.99),
    "mean": (0.945, 95.33),
}
TABLE4_TEST = {
    "AU10": (0.875, 88.60),
    "AU14": (0.752, 91.07),
    "AU20": (0.896, 89.85),
    "AU25": (0.979, 96.38),
    "AU26": (0.854, 82.18),
    "mean": (0.871, 89.62),
}

# Table 1 (GRID columns): method -> (PSNR, SSIM, mean AU F1, mean AU accuracy %).
TABLE1_GRID = {
    "CRAN": (28.041, 0.694, 0.710, 78.71),
    "Speech2Vid": (28.863, 0.755, 0.738, 78.97),
    "Baseline (Lrec)": (28.681, 0.746, 0.725, 77.77),
    "Proposed": (29.838, 0.769, 0.751, 80.92),
}

# Table 2 (GRID): row -> (PSNR, SSIM, mean F1, mean acc %), rows keyed like autalk.config's Table-2 names.
TABLE2_GRID = {
    "baseline": (28.681, 0.746, 0.725, 77.77),
    "+per": (28.897, 0.748, 0.732, 78.76),
    "+id": (29.403, 0.753, 0.735, 79.27),
    "+adv": (29.528, 0.755, 0.736, 79.55),
    "+au": (29.618, 0.764, 0.740, 80.20),
    "full": (29.838, 0.769, 0.751, 80.92),
}

# Table 5 (GRID): AU detection on generated frames, detector -> (mean F1, mean accuracy %).
TABLE5_GRID = {"AU classifier": (0.746, 80.77), "OpenFace": (0.751, 80.92)}

CAVEAT = (
    "paper: GRID with OpenFace labels; ours: the teaching corpus with its ground-truth labels, smaller "
    "images and CPU-sized training, so the numbers are not comparable in absolute terms"
)
