"""The papers' published test accuracies (%) that a study's results can be set beside, as the papers print them.

Sources: seed 000 (Wang et al., gradient rescaling, "GR" = our `dm`) Table 2 (clean data), Table 3 (CIFAR-10,
ResNet-56, symmetric noise, final test accuracy) and Table 4 (CIFAR-100, ResNet-44, symmetric noise, 5 runs); seed 002
(derivative manipulation, "DM") Table 1 (CIFAR-100, ResNet-44, symmetric and asymmetric noise). Rows of methods this
project does not implement (Forward, Backward, D2L) are left out, as is Table 3's CCE at 20% noise, which our copy of
the paper does not print legibly. SL is our `sce`; LS our `ls`. Seed 003 (IEG) Tables 1 and 2 (CIFAR-10 and CIFAR-100,
uniform noise, "validation accuracy" on the test set, 3 runs): the rows whose network it names (WRN-28-10, ResNet-29),
and its captions' standard training at rate 0 as CCE; L2R used 1k trusted images, IEG the number in its label.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One published number: where it is printed, the set-up it was measured on, and the paper's own row label."""

    source: str
    dataset: str
    model: str
    noise: str  # "any" at rate 0 (clean labels)
    rate: float
    method: str  # this project's method name
    label: str  # the paper's row
    accuracy: float  # test accuracy, %
    std: float | None = None


def _rows(source: str, dataset: str, model: str, noise: str, rates: tuple[float, ...],
          table: dict[tuple[str, str], tuple[float | tuple[float, float] | None, ...]]) -> list[Published]:
    """A paper table as records: {(method, label): one value (or (mean, std), or None where absent) per rate}."""
    out = []
    for (method, label), values in table.items():
        for rate, value in zip(rates, values):
            if value is None:
                continue
            mean, std = value if isinstance(value, tuple) else (value, None)
            out.append(Published(source, dataset, model, noise if rate > 0 else "any", rate, method, label, mean, std))
    return out


_T2 = "seed 000 Table 2"
PUBLISHED: tuple[Published, ...] = tuple([
    *_rows(_T2, "cifar10", "resnet20", "any", (0.0,),
           {("cce", "CCE"): (91.8,), ("dm", "GR (λ=0, β=2)"): (91.8,), ("dm", "GR (β=0)"): (91.0,)}),
    *_rows(_T2, "cifar10", "resnet56", "any", (0.0,),
           {("cce", "CCE"): (92.4,), ("dm", "GR (λ=0, β=2)"): (92.5,), ("dm", "GR (β=0)"): (91.9,)}),
    *_rows(_T2, "cifar100", "resnet44", "any", (0.0,),
           {("cce", "CCE"): (68.1,), ("dm", "GR (λ=0, β=2)"): (68.4,), ("dm", "GR (β=0)"): (66.4,)}),
    *_rows("seed 000 Table 3", "cifar10", "resnet56", "symmetric", (0.2, 0.4, 0.6, 0.8), {
        ("cce", "CCE"): (None, 60.9, 37.2, 16.1),
        ("dm", "GR (β=0)"): (58.1, 44.9, 57.9, 28.2),
        ("dm", "GR (λ=0)"): (76.4, 65.6, 53.9, 21.3),
        ("dm", "GR (λ=0.5)"): (87.8, 79.9, 58.5, 22.4),
        ("dm", "GR (λ=1)"): (86.7, 83.3, 70.0, 31.5),
        ("dm", "GR (λ=2)"): (85.5, 52.7, 72.5, 32.8),
    }),
    *_rows("seed 000 Table 4", "cifar100", "resnet44", "symmetric", (0.2, 0.4, 0.6), {
        ("cce", "CCE"): ((52.9, 0.2), (42.9, 0.2), (30.1, 0.2)),
        ("gce", "GCE"): ((53.4, 0.3), (47.0, 0.2), (41.0, 0.2)),
        ("boot-hard", "Bootstrap-hard"): ((58.5, 0.4), (44.4, 0.1), (36.7, 0.3)),
        ("boot-soft", "Bootstrap-soft"): ((57.3, 0.3), (41.9, 0.1), (32.3, 0.1)),
        ("dm", "GR (β=8, λ=0.5)"): ((62.6, 0.3), (59.3, 0.2), (49.9, 0.3)),
        ("dm", "GR (β, λ) tuned"): ((64.1, 0.2), (60.0, 0.1), (49.9, 0.3)),
    }),
    *[row for noise, rates, pick in (("symmetric", (0.0, 0.2, 0.4, 0.6), slice(0, 4)),
                                     ("asym-cifar100", (0.2, 0.3, 0.4), slice(4, 7)))
      for row in _rows("seed 002 Table 1", "cifar100", "resnet44", noise, rates, {
          key: values[pick] for key, values in {
              ("ls", "LS"): (63.7, 58.8, 50.1, 24.7, 63.0, 62.3, 61.6),
              ("boot-hard", "Boot-hard"): (63.3, 57.9, 48.2, 12.3, 63.4, 63.2, 62.1),
              ("sce", "SL"): (66.8, 60.0, 53.7, 41.5, 65.6, 65.1, 63.1),
              ("cce", "CCE"): (70.0, 60.4, 53.2, 42.1, 66.4, 64.7, 60.3),
              ("gce", "GCE"): (63.6, 62.4, 58.6, 50.6, 62.8, 62.2, 58.7),
              ("mae", "MAE"): (8.2, 6.4, 7.3, 5.2, 7.3, 6.3, 7.3),
              ("mse", "MSE"): (28.0, 24.6, 21.3, 18.0, 24.5, 24.3, 23.0),
              ("cce-dn", "CCE-DN"): (69.1, 60.7, 54.2, 44.6, 65.9, 64.0, 60.5),
              ("gce-dn", "GCE-DN"): (65.8, 62.5, 58.3, 48.4, 64.1, 62.1, 60.3),
              ("mae-dn", "MAE-DN"): (7.5, 5.4, 4.5, 4.8, 5.8, 3.5, 3.9),
              ("mse-dn", "MSE-DN"): (25.8, 28.4, 27.0, 26.5, 27.4, 23.9, 25.3),
              ("dm", "DM (β=0)"): (67.2, 56.2, 50.9, 44.4, 64.4, 62.5, 60.4),
              ("dm", "DM (λ=0)"): (70.1, 60.9, 55.2, 44.6, 65.5, 63.1, 60.6),
              ("dm", "DM (λ=0.5)"): (69.3, 65.7, 61.0, 52.9, 67.4, 65.0, 60.8),
              ("dm", "DM (λ=1)"): (69.2, 63.4, 54.7, 43.9, 67.5, 65.8, 63.3),
          }.items()})],
    *_rows("seed 003 Table 1", "cifar10", "wrn28_10", "uniform", (0.0, 0.2, 0.4, 0.8), {
        ("cce", "standard training"): (96.1, None, None, None),
        ("l2r", "L2R (1k probe)"): (96.1, (90.0, 0.4), (86.9, 0.2), (73.0, 0.8)),
        ("ieg", "IEG (0.1k probe)"): (96.8, (96.2, 0.2), (95.9, 0.2), (93.7, 0.5)),
    }),
    *_rows("seed 003 Table 1", "cifar10", "resnet29", "uniform", (0.0, 0.2, 0.4, 0.8), {
        ("cce", "standard training"): (92.7, None, None, None),
        ("ieg", "IEG-RN29 (0.1k probe)"): (94.4, (92.9, 0.2), (92.5, 0.5), (85.6, 1.1)),
    }),
    *_rows("seed 003 Table 2", "cifar100", "wrn28_10", "uniform", (0.0, 0.2, 0.4, 0.8), {
        ("cce", "standard training"): (81.6, None, None, None),
        ("l2r", "L2R (1k probe)"): (81.2, (67.1, 0.1), (61.3, 2.0), (35.1, 1.2)),
        ("ieg", "IEG (0.1k probe)"): (83.0, (77.4, 0.4), (75.1, 1.1), (62.1, 1.2)),
        ("ieg", "IEG (0.5k probe)"): (83.0, (80.4, 0.5), (79.6, 0.3), (73.6, 1.5)),
        ("ieg", "IEG (1k probe)"): (83.0, (81.2, 0.7), (80.2, 0.3), (75.5, 0.2)),
    }),
    *_rows("seed 003 Table 2", "cifar100", "resnet29", "uniform", (0.0, 0.2, 0.4, 0.8), {
        ("cce", "standard training"): (71.3, None, None, None),
        ("ieg", "IEG-RN29 (1k probe)"): (70.3, (69.3, 0.5), (67.0, 0.8), (60.7, 1.0)),
    }),
])


def published_for(dataset: str, model: str, noise: str, rate: float, method: str) -> list[Published]:
    """Per source, the best published number for `method` on this set-up (a paper's best row of the method: its own
    tuned result), sorted by source; [] where the papers report none."""
    best: dict[str, Published] = {}
    for row in PUBLISHED:
        if (row.dataset, row.model, row.method) == (dataset, model, method) and abs(row.rate - rate) < 1e-9 \
                and row.noise in (noise, "any"):
            if row.source not in best or row.accuracy > best[row.source].accuracy:
                best[row.source] = row
    return [best[source] for source in sorted(best)]


def published_setups() -> list[tuple[str, str]]:
    """The (data set, model) pairs the papers report on."""
    return sorted({(row.dataset, row.model) for row in PUBLISHED})
