"""Label sets, the axis a study sweeps: a noise kind at one rate (a synthetic kind, once per noise rate) or a human
kind's one set of labels (CIFAR-N, its rate the file's). Each is searched and retrained on its own.

    >>> [ls.key for ls in label_sets(["cifar10n-worst", "symmetric"], [0.4])]
    ['cifar10n-worst', 'symmetric-0.4']
    >>> [ls.name() for ls in label_sets("symmetric", [0.0, 0.4])]
    ['noise rate 0', 'noise rate 0.4']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from trainers.catalog import HUMAN_NOISE_KINDS

__all__ = ["LabelSet", "label_sets", "noise_kinds", "pct_label"]


def pct_label(rate: float) -> str:
    """A noise rate as a percentage: 0.4 → "40%"."""
    return f"{rate * 100:g}%"


@dataclass(frozen=True)
class LabelSet:
    """One label set of a study: `noise` at `rate` (0 for a human kind); `several`: its study has several kinds."""

    noise: str
    rate: float = 0.0
    several: bool = False

    @property
    def human(self) -> bool:
        """Whether its labels are a CIFAR-N label file's (its rate is the file's, not `rate`)."""
        return self.noise in HUMAN_NOISE_KINDS

    @property
    def key(self) -> str:
        """Its name in folders, MLflow tags and study.json: the rate ("0.4") in a study of one synthetic kind, the
        kind ("cifar10n-worst") for a human kind, else kind and rate ("symmetric-0.4")."""
        if self.human:
            return self.noise
        return f"{self.noise}-{self.rate:g}" if self.several else f"{self.rate:g}"

    def name(self, synthetic: str = "noise rate {rate:g}") -> str:
        """Its name for people: `synthetic` filled in ({rate}: the rate, {pct}: as a percentage) in a study of one
        synthetic kind, the kind for a human kind, else "<kind> <pct>" ("symmetric 40%")."""
        if self.human:
            return self.noise
        if self.several:
            return f"{self.noise} {pct_label(self.rate)}"
        return synthetic.format(rate=self.rate, pct=pct_label(self.rate))


def noise_kinds(noise: str | Sequence[str]) -> tuple[str, ...]:
    """A study's noise kinds: its `noise` key (one kind, or a list of them) as a tuple."""
    return (noise,) if isinstance(noise, str) else tuple(noise)


def label_sets(noise: str | Sequence[str], rates: Sequence[float]) -> tuple[LabelSet, ...]:
    """The label sets of a study with noise kind(s) `noise` and `rates`, in its order: each kind in turn, a synthetic
    kind at each rate, a human kind once."""
    kinds = noise_kinds(noise)
    several = len(kinds) > 1
    return tuple(LabelSet(kind, 0.0, several) if kind in HUMAN_NOISE_KINDS else LabelSet(kind, float(rate), several)
                 for kind in kinds for rate in ([0.0] if kind in HUMAN_NOISE_KINDS else rates))
