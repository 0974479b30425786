"""Tests for trainers.schedules.Schedule: multistep, exponential, cosine (with warm restarts) and warm-up, against
closed forms."""

from __future__ import annotations

import math

import pytest

from trainers import TrainConfig, Trainer, load_dataset
from trainers.schedules import Schedule


def _cosine(t: float, length: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * t / length))


def test_constant_is_one_everywhere() -> None:
    schedule = Schedule("constant")
    assert [schedule(s) for s in (0, 1, 100, 10**6)] == [1.0, 1.0, 1.0, 1.0]


def test_constant_from_default_config() -> None:
    schedule = Schedule.from_config(TrainConfig(), steps_per_epoch=9, total_steps=180)
    assert schedule.kind == "constant"
    assert schedule(0) == schedule(179) == 1.0


@pytest.mark.parametrize(
    ("step", "factor"),
    [(0, 1.0), (14_999, 1.0), (15_000, 0.1), (21_999, 0.1), (22_000, 0.01), (29_999, 0.01)],
)
def test_multistep_by_iterations_as_in_the_papers(step: int, factor: float) -> None:
    config = TrainConfig(schedule="multistep", schedule_unit="iteration", milestones=(15_000, 22_000),
                         gamma=0.1, epochs=None, iterations=30_000)
    schedule = Schedule.from_config(config, steps_per_epoch=391, total_steps=30_000)
    assert schedule.milestones == (15_000, 22_000)
    assert schedule(step) == pytest.approx(factor, rel=1e-12)
    direct = Schedule("multistep", milestones=(15_000, 22_000), gamma=0.1)
    assert direct(step) == pytest.approx(factor, rel=1e-12)


def test_multistep_by_epochs_scales_milestones_by_steps_per_epoch() -> None:
    config = TrainConfig(schedule="multistep", schedule_unit="epoch", milestones=(3, 5), gamma=0.5, epochs=8)
    spe = 7
    schedule = Schedule.from_config(config, steps_per_epoch=spe, total_steps=8 * spe)
    assert schedule.milestones == (21, 35)
    expected = [1.0] * 21 + [0.5] * 14 + [0.25] * 21
    assert [schedule(s) for s in range(8 * spe)] == pytest.approx(expected, rel=1e-12)


def test_multistep_with_fractional_epoch_milestone() -> None:
    config = TrainConfig(schedule="multistep", milestones=(1.5,), epochs=3)
    schedule = Schedule.from_config(config, steps_per_epoch=10, total_steps=30)
    assert schedule(14) == 1.0
    assert schedule(15) == pytest.approx(0.1)


def test_exponential_by_epochs_multiplies_by_gamma_after_each_epoch() -> None:
    """Seed 004's recipe: Adam lr 1e-3 × 0.85 every epoch, held constant within an epoch."""
    config = TrainConfig(schedule="exponential", gamma=0.85, epochs=4)
    schedule = Schedule.from_config(config, steps_per_epoch=5, total_steps=20)
    assert [schedule(s) for s in range(20)] == pytest.approx([0.85**(s // 5) for s in range(20)], rel=1e-12)


def test_exponential_by_iterations_with_warmup() -> None:
    config = TrainConfig(schedule="exponential", schedule_unit="iteration", gamma=0.5, warmup=2, epochs=None,
                         iterations=6)
    schedule = Schedule.from_config(config, steps_per_epoch=3, total_steps=6)
    assert [schedule(s) for s in range(6)] == pytest.approx([0.5, 0.5, 0.25, 0.125, 0.0625, 0.03125], rel=1e-12)


def test_exponential_reaches_the_trainer() -> None:
    trainer = Trainer(TrainConfig(schedule="exponential", gamma=0.5, optimizer="adam", lr=1e-3, epochs=3),
                      load_dataset("digits"))
    assert [m["lr"] for m in trainer] == pytest.approx([1e-3, 5e-4, 2.5e-4], rel=1e-12)


@pytest.mark.parametrize("total", [100, 1_000, 7])
def test_cosine_without_restarts_over_the_whole_run(total: int) -> None:
    config = TrainConfig(schedule="cosine", schedule_unit="iteration", epochs=None, iterations=total)
    schedule = Schedule.from_config(config, steps_per_epoch=13, total_steps=total)
    for step in range(total):
        assert schedule(step) == pytest.approx(_cosine(step, total), abs=1e-12), step
    assert schedule(0) == 1.0


def test_cosine_period_in_epochs() -> None:
    config = TrainConfig(schedule="cosine", cosine_period=4, epochs=4)
    schedule = Schedule.from_config(config, steps_per_epoch=25, total_steps=100)
    assert schedule.period == 100
    assert schedule(50) == pytest.approx(0.5, abs=1e-12)
    assert schedule(25) == pytest.approx(_cosine(25, 100), abs=1e-12)


def _restarted(step: int, period: float, mult: float, decay: float) -> float:
    """SGDR by explicit period boundaries: [0, P), [P, P + P·m), [P + P·m, P + P·m + P·m²), ..."""
    start, length, k = 0.0, period, 0
    while not (start <= step < start + length):
        start, length, k = start + length, length * mult, k + 1
    return decay**k * _cosine(step - start, length)


def test_cosine_warm_restarts() -> None:
    config = TrainConfig(schedule="cosine", schedule_unit="iteration", cosine_period=500, cosine_mult=1.5,
                         cosine_decay=0.9, epochs=None, iterations=3_000)
    schedule = Schedule.from_config(config, steps_per_epoch=10, total_steps=3_000)
    assert schedule(0) == 1.0
    # Restarts at 500 (period 750 follows) and at 500 + 750 = 1250 (period 1125), each peak ×0.9.
    assert schedule(500) == pytest.approx(0.9, abs=1e-12)
    assert schedule(1250) == pytest.approx(0.81, abs=1e-12)
    assert schedule(2375) == pytest.approx(0.729, abs=1e-12)
    # Just before a restart the factor is near zero; in mid-period it is half the peak.
    assert schedule(499) < 1e-4
    assert schedule(1249) < 1e-4
    assert schedule(250) == pytest.approx(0.5, abs=1e-12)
    assert schedule(500 + 375) == pytest.approx(0.45, abs=1e-12)
    for step in range(0, 3_000, 7):
        assert schedule(step) == pytest.approx(_restarted(step, 500, 1.5, 0.9), abs=1e-12), step


def test_cosine_warm_restarts_constructed_directly() -> None:
    schedule = Schedule("cosine", period=10, mult=2.0, decay=0.5)
    assert schedule(10) == pytest.approx(0.5)
    assert schedule(30) == pytest.approx(0.25)
    assert schedule(20) == pytest.approx(0.5 * _cosine(10, 20))


def test_linear_warmup_in_iterations() -> None:
    schedule = Schedule("constant", warmup=10)
    assert schedule(0) == pytest.approx(0.1)
    assert [schedule(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert schedule(9) == 1.0
    assert schedule(50) == 1.0


def test_warmup_from_config_in_epochs_multiplies_the_schedule() -> None:
    config = TrainConfig(schedule="multistep", milestones=(1,), warmup=2, epochs=3)
    schedule = Schedule.from_config(config, steps_per_epoch=5, total_steps=15)
    assert schedule.warmup == 10
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(4) == pytest.approx(0.5)
    assert schedule(5) == pytest.approx(0.6 * 0.1)  # warm-up and the first milestone overlap
    assert schedule(9) == pytest.approx(0.1)


def test_warmup_with_cosine() -> None:
    schedule = Schedule("cosine", period=100, warmup=10)
    assert schedule(0) == pytest.approx(0.1 * _cosine(0, 100))
    assert schedule(4) == pytest.approx(0.5 * _cosine(4, 100))
    assert schedule(40) == pytest.approx(_cosine(40, 100))
