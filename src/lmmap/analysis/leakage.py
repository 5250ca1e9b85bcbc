"""Leakage screen: models whose log-likelihood on the reference texts is far higher than their
benchmark score predicts may have seen those texts (or similar ones) in training.

A robust line (Huber) is fitted of mean log-likelihood on benchmark mean over all models, so the
suspects themselves barely move it; residuals are divided by a robust scale (1.4826 x MAD) and
models above the configured threshold are flagged. The same fit per domain says which domains drive
a model's excess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import HuberRegressor

MAD_TO_SD = 1.4826


def robust_residuals(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, HuberRegressor]:
    """Standardised residuals of y on x under a Huber fit (residual / robust scale) and the fit."""
    fit = HuberRegressor(max_iter=1000).fit(np.asarray(x, float).reshape(-1, 1), np.asarray(y, float))
    residual = y - fit.predict(np.asarray(x, float).reshape(-1, 1))
    scale = MAD_TO_SD * np.median(np.abs(residual - np.median(residual)))
    return residual / (scale if scale > 0 else 1.0), fit


def leakage_screen(frame: pd.DataFrame, domain_loglik: pd.DataFrame, threshold: float,
                   top_domains: int = 3) -> tuple[pd.DataFrame, HuberRegressor]:
    """`frame` has model_id, type, mean_loglik, benchmark_mean (no NaN); `domain_loglik` has one
    column per domain (mean log-likelihood over its texts), rows aligned with `frame`.

    Returns every model sorted by z (descending) with `residual_z`, `flagged`, one `z:<domain>`
    column per domain and `top_domains` (the domains with the largest z), and the overall fit.
    """
    z, fit = robust_residuals(frame["benchmark_mean"].to_numpy(), frame["mean_loglik"].to_numpy())
    screen = frame[["model_id", "type", "mean_loglik", "benchmark_mean"]].reset_index(drop=True)
    screen["residual"] = screen["mean_loglik"] - fit.predict(screen[["benchmark_mean"]].to_numpy())
    screen["residual_z"] = z
    screen["flagged"] = z > threshold
    per_domain = pd.DataFrame({
        f"z:{domain}": robust_residuals(frame["benchmark_mean"].to_numpy(), values.to_numpy())[0]
        for domain, values in domain_loglik.reset_index(drop=True).items()})
    screen["top_domains"] = [
        ", ".join(f"{name[2:]} ({value:.1f})" for name, value in row.nlargest(top_domains).items())
        for _, row in per_domain.iterrows()]
    screen = pd.concat([screen, per_domain], axis=1)
    return screen.sort_values("residual_z", ascending=False, kind="stable").reset_index(drop=True), fit
