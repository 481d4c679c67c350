"""Check committed notebooks: no outputs or execution counts, kernel ``python3``, one ``parameters`` cell.

``python -m autalk.nbcheck notebooks`` exits non-zero and lists every offending notebook; ``make test``
runs it so a notebook committed with outputs fails CI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def problems(path: Path) -> list[str]:
    """Everything wrong with one notebook file, as readable strings."""
    nb = json.loads(path.read_text())
    out = []
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        out.append(f"kernelspec name is {kernel!r}, expected 'python3'")
    n_params = 0
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            n_params += 1
        if cell.get("outputs"):
            out.append(f"cell {i} has outputs (clear them before committing)")
        if cell.get("execution_count") is not None:
            out.append(f"cell {i} has an execution count (clear it before committing)")
    if n_params != 1:
        out.append(f"expected exactly one cell tagged 'parameters', found {n_params}")
    return out


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv or sys.argv[1:] or ["notebooks"])[0])
    bad = 0
    paths = sorted(folder.glob("*.ipynb"))
    for p in paths:
        for msg in problems(p):
            print(f"{p}: {msg}")
            bad += 1
    print(f"nbcheck: {len(paths)} notebooks, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
