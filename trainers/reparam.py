"""DM's (ψ, ρ) reparametrisation of (λ, β): emphasis mode ψ and log max/min weight ratio ρ (DESIGN §2).

Torch-free, for the config checks and the trainer alike; search_spaces re-exports it (its spaces search ψ, ρ).
"""

from __future__ import annotations

from trainers.errors import ConfigError


def to_psi_rho(lam: float, beta: float) -> tuple[float, float]:
    """(ψ, ρ) of DM's weight exp(β·p^λ·(1−p)): ψ = λ/(λ+1), ρ = β·ψ^λ·(1−ψ) (0^0 = 1).

    >>> to_psi_rho(1.0, 16.0)
    (0.5, 4.0)
    """
    if not lam >= 0:
        raise ConfigError("lam", lam, "a number ≥ 0")
    psi = lam / (lam + 1)
    return psi, beta * psi**lam * (1 - psi)


def from_psi_rho(psi: float, rho: float) -> tuple[float, float]:
    """(λ, β) with emphasis mode `psi` in [0, 1) and log weight ratio `rho`; the inverse of `to_psi_rho`.

    >>> from_psi_rho(0.5, 4.0)
    (1.0, 16.0)
    """
    if not 0 <= psi < 1:
        raise ConfigError("psi", psi, "a number in [0, 1)")
    lam = psi / (1 - psi)
    return lam, rho / (psi**lam * (1 - psi))
