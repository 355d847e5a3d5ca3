"""`--for handwriting`: of the finished runs, the one that reads people's digits best.

Every `train` measures its model on the robustness suite (MNIST test digits written as
people write them: slanted, thick, faint, photographed, box-filled ...) and keeps the
figures in the run's robustness.json. The runs are ranked by their mean over the suite's
rows they all have, so that runs measured before a change joined the suite still compare
fairly. Nothing is re-measured here: the choice is quick, and it is the same for `predict`,
`serve` and the page, because they all ask this module. The chosen model then reads each
digit as it is and turned by `TURNS` (the probabilities averaged): people's digits lean
further than MNIST's, and the angles were chosen on the validation digits' suite
(docs/handwriting.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mnist_cnn import rundir

PURPOSES = ("handwriting",)
BASELINE = "none"  # the suite's unchanged page: not a change, so not in the mean
TURNS = (20.0, -20.0)  # degrees: Classifier(turns=...) averages over these views too


@dataclass(frozen=True)
class Choice:
    """The run chosen, its suite mean, and how many measured runs it was chosen from."""

    run: Path
    suite_mean: float
    rows: int
    measured: int
    turns: tuple[float, ...] = TURNS

    def to_dict(self) -> dict:
        return {
            "for": "handwriting",
            "run": str(self.run),
            "suite_mean": round(self.suite_mean, 4),
            "suite_rows": self.rows,
            "measured_runs": self.measured,
            "turns": list(self.turns),
            "why": self.describe(),
        }

    def describe(self) -> str:
        """One line for the user: which model, and why it is the one."""
        config = rundir.read_json(self.run / rundir.CONFIG)
        name = config.get("model", self.run.name)
        ensemble = config.get("settings", {}).get("ensemble") or 1
        what = f"{name}, an ensemble of {ensemble}" if ensemble > 1 else name
        among = (
            f"the best of {self.measured} measured runs"
            if self.measured > 1
            else "the only measured run"
        )
        turns = "/".join(f"{angle:+g}" for angle in self.turns)
        return (
            f"for handwriting: {self.run} ({what}; robustness suite {self.suite_mean:.1%} "
            f"over {self.rows} changes and strengths, {among}); each digit also read "
            f"turned {turns} degrees"
        )


def run_for_handwriting(out: str | os.PathLike = "runs") -> Choice:
    """The finished run under `out` with the best robustness-suite mean (the newest wins a
    tie); an error that says what to do when no run there has been measured."""
    measured = []
    for run in rundir.finished_runs(out):  # newest first
        figures = run / rundir.ROBUSTNESS
        if figures.is_file():
            rows = rundir.read_json(figures).get("rows", [])
            accuracy = {
                (row["change"], row["strength"]): row["accuracy"]
                for row in rows
                if row.get("change") != BASELINE
            }
            if accuracy:
                measured.append((run, accuracy))
    if not measured:
        raise rundir.RunError(
            f"no run under {out}/ has robustness figures ({rundir.ROBUSTNESS}, written when "
            "'mnist-cnn train' finishes); train one ('mnist-cnn train robust') or name a run"
        )
    shared = set.intersection(*(set(accuracy) for _, accuracy in measured))
    if not shared:
        raise rundir.RunError(
            f"the runs under {out}/ were measured on suites with no change in common; "
            "name the run to use"
        )
    scored = [(sum(a[key] for key in shared) / len(shared), run) for run, a in measured]
    best = max(scored, key=lambda pair: pair[0])  # max keeps the first: the newest of equals
    return Choice(best[1], best[0], len(shared), len(measured))
