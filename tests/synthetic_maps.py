"""Map inputs made from a synthetic log-likelihood matrix, for tests of the analysis commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmmap.coords import clip_matrix, double_centre
from lmmap.storage import save_npz


def save_matrix_and_coordinates(root: Path, L: np.ndarray, ids: list[str], domains, stored_clip=None) -> None:
    """root/loglik.npz (L) and root/coordinates.npz (Q of L clipped at its 2% quantile), as `merge` and
    `coordinates` write them; the coordinates record `stored_clip`, or the clip value used when None."""
    text_ids = np.array([f"t{j}" for j in range(L.shape[1])])
    save_npz(
        root / "loglik.npz",
        L=L,
        model_ids=np.array(ids),
        text_ids=text_ids,
        domains=domains,
        text_set_sha256=np.array("x"),
    )
    clipped, clip_value = clip_matrix(L, 0.02)
    save_npz(
        root / "coordinates.npz",
        Q=double_centre(clipped),
        model_ids=np.array(ids),
        text_ids=text_ids,
        domains=domains,
        clip_value=np.array(clip_value if stored_clip is None else stored_clip),
    )
