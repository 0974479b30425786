"""One training run from the command line: `python -m trainers --dataset digits --method dm --lam 1 --beta 8`.

A numeric method flag takes a schedule over training progress too, SHAPE:FROM:TO[:AT[:B]] or piecewise:V0:T1:V1:...
(trainers.param_schedules), e.g. `--method dm --psi linear:0.5:0.2 --rho 4`, `--psi piecewise:0.2:0.5:0.4`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Mapping, Sequence

from tqdm import tqdm

from trainers.config import TrainConfig
from trainers.datasets import list_datasets, load_dataset
from trainers.errors import ConfigError, DataError
from trainers.human_noise import HUMAN_NOISE_KINDS
from trainers.losses import list_losses, loss_params
from trainers.models import list_models
from trainers.noise import NOISE_KINDS
from trainers.training import Metrics, Trainer

SHOWN = ("train_loss", "fit_acc", "intact_acc", "val_acc", "test_acc", "p_clean", "p_noisy", "noise_auroc_p",
         "noise_auroc_weight", "emphasis_var", "weight_clean", "weight_noisy", "relabel_clean", "relabel_noisy")
# Flags that set a method's hyperparameter; the method must have it (see --help for each method's list).
METHOD_FLAGS = {"lam": float, "beta": float, "psi": float, "rho": float, "q": float, "alpha": float, "eta": float,
                "epsilon": float, "normalize": str, "eps": float, "a": float, "k": "number", "within_class": bool,
                "layers": str, "drop": float, "meta_lr": float, "p": float, "temperature": float,
                "init_relabel": float, "mixup_alpha": float, "meta_momentum": bool, "uc": bool, "mc": bool,
                "aa": bool, "relabel": bool, "scale": float, "truncate": float}
METHOD_HELP = {"eps": "DM family: the guard ε in w_i/(2(1 − p_i) + ε) (default: the authors' 1e-6; 0: the exact "
                      "gradient)",
               "psi": "dm-normal's ψ; for dm, its emphasis mode ψ = λ/(λ+1), with --rho in place of --lam, --beta",
               "rho": "dm: log max/min weight ratio ρ = β·ψ^λ·(1 − ψ), with --psi in place of --lam, --beta"}
SCHEDULE_HELP = ("; a numeric one also takes a schedule over training progress t in [0, 1], SHAPE:FROM:TO[:AT[:B]] "
                 "with SHAPE linear, cosine, step (jumps at AT) or sigmoid (midpoint AT, steepness B), "
                 "e.g. --psi linear:0.5:0.2, or piecewise constant, piecewise:V0:T1:V1:...:Tn:Vn (each value from "
                 "its breakpoint T on), e.g. --psi piecewise:0.2:0.5:0.4")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad value
        self.exit(2, f"error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    methods = "\n".join(f"  {m:10} {', '.join(f'{k}={v}' for k, v in loss_params(m).items())}" for m in list_losses())
    p = _Parser(
        prog="python -m trainers",
        description="Train one model on data with wrong labels and print the metrics of each epoch.",
        epilog=f"methods and their parameters (defaults){SCHEDULE_HELP}:\n{methods}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = TrainConfig()
    p.add_argument("--dataset", default=d.dataset,
                   help=f"one of: {', '.join(list_datasets())}; or your own: npz:PATH, folder:PATH (see the README)")
    p.add_argument("--data-root", default=None, help="folder of the data files (default: $NOISY_DATA_ROOT or ~/.cache/noisy-data)")
    p.add_argument("--model", default=d.model, help=f"one of: {', '.join(list_models())}")
    p.add_argument("--method", default=d.method, help=f"one of: {', '.join(list_losses())}")
    for name, kind in METHOD_FLAGS.items():
        flag, what = "--" + name.replace("_", "-"), METHOD_HELP.get(name, f"the method's {name}")
        if kind is bool:
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=what)
        else:
            p.add_argument(flag, dest=name, type=_number if kind == "number" else _float if kind is float else kind,
                           default=None, help=what)
    p.add_argument("--noise", default=f"{d.noise}:{d.noise_rate}", metavar="KIND:RATE",
                   help=f"label noise, KIND one of: {', '.join(NOISE_KINDS)}; RATE in [0, 1) (default symmetric:0; "
                        "given: the labels as given, no rate); or a human kind, without a rate (CIFAR-N, see the "
                        f"README): {', '.join(HUMAN_NOISE_KINDS)}")
    p.add_argument("--probe-per-class", type=int, default=None,
                   help="trusted examples per class held out before the noise (default: 10 for l2r and ieg, else 0)")
    p.add_argument("--val-labels", default=d.val_labels,
                   help="the validation part's labels: clean (true), noisy, or trusted (the data's trusted examples)")
    p.add_argument("--split", default=d.split, help="search: train on the noisy 80%%, validate on the clean 20%%; final: train on all")
    p.add_argument("--epochs", type=int, default=None, help=f"training length in epochs (default {d.epochs})")
    p.add_argument("--iterations", type=int, default=None, help="training length in iterations instead of epochs")
    p.add_argument("--optimizer", default=d.optimizer, help="sgd or adam")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--schedule", default=d.schedule, help="constant, multistep, exponential or cosine")
    p.add_argument("--schedule-unit", default=d.schedule_unit,
                   help="epoch or iteration: the unit of the exponential decay and of the next four")
    p.add_argument("--gamma", type=float, default=d.gamma,
                   help=f"multistep: lr × gamma at each milestone; exponential: after each unit (default {d.gamma})")
    p.add_argument("--milestones", default="", help="multistep: comma-separated, e.g. 15000,22000")
    p.add_argument("--cosine-period", type=float, default=None, help="cosine: first period (default: the whole run)")
    p.add_argument("--cosine-mult", type=float, default=d.cosine_mult, help="cosine: each restart's period ×")
    p.add_argument("--cosine-decay", type=float, default=d.cosine_decay, help="cosine: each restart's peak ×")
    p.add_argument("--warmup", type=float, default=d.warmup, help="linear warm-up length")
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="evaluate an exponential moving average of the weights with this decay per step "
                        "(default: the method's, 0.999 for ieg as its authors, else off)")
    p.add_argument("--no-ema", dest="ema", action="store_const", const=0.0, help="evaluate the raw weights")
    p.add_argument("--diag-subsample", type=int, default=d.diag_subsample, metavar="N",
                   help="compute the training-set metrics at each evaluation but the last from a fixed stratified "
                        f"subsample of N training examples (default {d.diag_subsample}; 0: all of them)")
    p.add_argument("--augment", choices=("on", "off"), default=None, help="crop and flip (default: the data set's)")
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", action="store_true", help="print each evaluation as one JSON line instead of a table")
    return p


def _number(text: str) -> int | float | str:
    """An integer where the text is one (gradsim's k), else a float (IEG's k), else the text: a schedule, which the
    config checks."""
    try:
        return int(text)
    except ValueError:
        return _float(text)


def _float(text: str) -> float | str:
    """A float, or where the text has a colon the text itself: a schedule (SHAPE:FROM:TO[:AT[:B]], piecewise:...),
    which the config checks (a bad one: a one-line error naming the method's parameter)."""
    try:
        return float(text)
    except ValueError:
        if ":" in text:
            return text
        raise argparse.ArgumentTypeError(f"not a number, nor a schedule SHAPE:FROM:TO[:AT[:B]]: {text!r}") from None


def _noise(text: str) -> tuple[str, float]:
    """(kind, rate) of `--noise`: KIND:RATE for a synthetic kind, a human kind or `given` alone."""
    kind, colon, rate = text.partition(":")
    if kind in HUMAN_NOISE_KINDS:
        if colon:
            raise ConfigError("--noise", text, f"{kind} without a rate: it takes its rate from its CIFAR-N file")
        return kind, 0.0
    if kind in NOISE_KINDS and not colon and kind != "given":
        raise ConfigError("--noise", text, f"KIND:RATE: {kind} needs a rate, e.g. {kind}:0.4")
    try:
        return kind, float(rate or 0)
    except ValueError:
        raise ConfigError("--noise", text, "KIND:RATE with RATE a number, e.g. symmetric:0.4") from None


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed flags describe (validated)."""
    kind, noise_rate = _noise(args.noise)
    try:
        milestones = tuple(float(m) for m in args.milestones.split(",") if m.strip())
    except ValueError:
        raise ConfigError("--milestones", args.milestones, "comma-separated numbers, e.g. 15000,22000") from None
    params = {k: getattr(args, k) for k in METHOD_FLAGS if getattr(args, k) is not None}
    epochs = args.epochs if args.epochs is not None or args.iterations is not None else TrainConfig().epochs
    return TrainConfig(
        dataset=args.dataset, data_root=args.data_root, model=args.model, dropout=args.dropout,
        method=args.method, method_params=params, noise=kind, noise_rate=noise_rate, split=args.split,
        val_labels=args.val_labels,
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
        weight_decay=args.weight_decay, batch_size=args.batch_size, epochs=epochs, iterations=args.iterations,
        schedule=args.schedule, schedule_unit=args.schedule_unit, milestones=milestones, gamma=args.gamma,
        cosine_period=args.cosine_period, cosine_mult=args.cosine_mult, cosine_decay=args.cosine_decay,
        probe_per_class=args.probe_per_class, warmup=args.warmup, ema=args.ema, diag_subsample=args.diag_subsample,
        augment=None if args.augment is None else args.augment == "on", device=args.device, bf16=args.bf16,
        seed=args.seed,
    )


def _row(metrics: Metrics, scheduled: Sequence[str] = ()) -> str:
    """An evaluation's line: its epoch, the `scheduled` parameters in force, then the SHOWN metrics it has."""
    cells = [f"epoch {metrics['epoch']:6.2f}"] + [f"{k} {metrics[k]:.4f}" for k in (*scheduled, *SHOWN) if k in metrics]
    return "  ".join(cells)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 on success, 2 for a bad setting or unreadable data (one line on stderr)."""
    args = _parser().parse_args(argv)
    try:
        config = config_from_args(args)
        trainer = Trainer(config, load_dataset(config.dataset, config.data_root))
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    realised = trainer.info["noise_rate_realised"]
    realised = "true labels unknown" if realised is None else f"{realised:.3f} realised"
    ema = f" · EMA {trainer.info['ema_decay']:g} evaluation" if trainer.info["eval_weights"] == "ema" else ""
    print(f"{config.dataset} · {config.model} · {config.method} {config.method_params or ''} · "
          f"{config.noise} noise {realised} · {trainer.info['device']}{ema}",
          file=sys.stderr)
    scheduled = [k for k, v in config.method_params.items() if isinstance(v, Mapping)]  # a schedule's mapping
    with tqdm(total=trainer.total_steps, unit="it", file=sys.stderr, disable=None, leave=False) as bar:
        try:
            for metrics in trainer:
                bar.update(metrics["step"] - bar.n)
                bar.write(json.dumps(metrics) if args.json else _row(metrics, scheduled), file=sys.stdout)
        except FloatingPointError as err:
            print(f"error: training diverged: {err}", file=sys.stderr)
            return 1
    last = trainer.history[-1]
    if not args.json:
        best = ", ".join(f"{k} {last[k]:.4f}" for k in ("best_val_acc", "test_acc_at_best_val", "best_test_acc") if k in last)
        print(f"final test_acc {last['test_acc']:.4f}; {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
