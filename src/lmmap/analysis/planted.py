"""Planted data for measuring the leakage screen (docs/leakage.md, tests): a K x N log-likelihood
matrix with known families, benchmark scores linear in hidden traits, and a few models given a
constant log-likelihood excess on every text, as if they had seen the reference texts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


@dataclasses.dataclass
class Planted:
    L: np.ndarray  # [K, N] log-likelihoods per text
    domains: np.ndarray  # [N]
    families: np.ndarray  # [K]
    tasks: pd.DataFrame  # [K, tasks] scores 0-100
    leaked: np.ndarray  # [K] bool: the models given the excess

    def frame(self) -> pd.DataFrame:
        """The screen's input table (families as both `type` and `group`)."""
        return pd.DataFrame(
            {
                "model_id": [f"m{i:04d}" for i in range(len(self.L))],
                "type": self.families,
                "group": self.families,
                "mean_loglik": self.L.mean(axis=1),
                "benchmark_mean": self.tasks.mean(axis=1).to_numpy(),
            }
        )

    def domain_means(self) -> pd.DataFrame:
        return pd.DataFrame({d: self.L[:, self.domains == d].mean(axis=1) for d in np.unique(self.domains)})


def planted_leakage(
    K: int = 1018,
    n_texts: int = 1000,
    n_domains: int = 10,
    n_families: int = 29,
    n_leaked: int = 20,
    excess: float = 20.0,
    seed: int = 0,
) -> Planted:
    """Families of uneven size (Dirichlet 0.7) with their own log-likelihood level (SD 40 nats per
    text, as tokenizers differ); three hidden traits per model (family mean + SD 0.7); six task scores
    linear in the traits (noise SD 2); log-likelihood level = family level + 15 x trait 0 + model noise
    (SD 5), plus a domain profile (SD 3) and text noise (SD 2). `excess` nats are added to every text
    of `n_leaked` random models."""
    rng = np.random.default_rng(seed)
    families = rng.choice(n_families, size=K, p=rng.dirichlet(np.full(n_families, 0.7)))
    family_level, family_traits = rng.normal(0, 40, n_families), rng.normal(0, 1, (n_families, 3))
    traits = family_traits[families] + rng.normal(0, 0.7, (K, 3))
    tasks = pd.DataFrame(
        np.clip(50 + traits @ rng.normal(0, 6, (3, 6)) + rng.normal(0, 2, (K, 6)), 0, 100),
        columns=[f"task{k}" for k in range(6)],
    )
    domains = np.array([f"domain{d:02d}" for d in np.arange(n_texts) % n_domains])
    level = family_level[families] + 15 * traits[:, 0] + rng.normal(0, 5, K)
    profile = rng.normal(0, 3, (K, n_domains))[:, np.arange(n_texts) % n_domains]
    L = -400 + rng.normal(0, 60, n_texts) + level[:, None] + profile + rng.normal(0, 2, (K, n_texts))
    leaked = np.zeros(K, dtype=bool)
    leaked[rng.choice(K, n_leaked, replace=False)] = True
    L[leaked] += excess
    return Planted(L, domains, np.array([f"family{f:02d}" for f in families]), tasks, leaked)


def screen_metrics(z: np.ndarray, leaked: np.ndarray, thresholds) -> pd.DataFrame:
    """Recall (planted models flagged), false-flag rate (other models flagged) and AUC of the z-scores."""
    auc = roc_auc_score(leaked, z)
    return pd.DataFrame(
        [
            {
                "threshold": t,
                "recall": float((z[leaked] > t).mean()),
                "false_flag_rate": float((z[~leaked] > t).mean()),
                "auc": auc,
            }
            for t in thresholds
        ]
    )
