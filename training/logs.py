"""A run's record: metrics.csv, TensorBoard scalars, loss.png, and the rich progress line.

Only the main process writes. On resume, rows after the checkpoint's step are dropped from
metrics.csv first, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from patchcoder.ground.atomic import atomic_write

FIELDS = ["step", "split", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "accuracy"]


class TrainingLog:
    def __init__(self, out: Path, *, enabled: bool = True, resume_step: int | None = None):
        self.out, self.enabled = Path(out), enabled
        self._tb = None
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.out / "metrics.csv"
        rows = self.read() if resume_step is not None and self.csv_path.exists() else []
        rows = [r for r in rows if int(r["step"]) <= (resume_step or 0)]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.csv_path, text.getvalue())  # a resumed run's log is never lost halfway
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out / "tensorboard"), purge_step=resume_step)
        except ImportError:  # tensorboard is a dependency, but a CSV is enough to go on without it
            self._tb = None

    def read(self) -> list[dict]:
        with open(self.csv_path, newline="") as f:
            return list(csv.DictReader(f))

    def _append(self, row: dict) -> None:
        with open(self.csv_path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=FIELDS).writerow(row)

    def train(self, step: int, loss: float, lr: float, grad_norm: float, tokens: int, tokens_per_s: float) -> None:
        if not self.enabled:
            return
        self._append({"step": step, "split": "train", "loss": f"{loss:.6f}", "lr": f"{lr:.3e}",
                      "grad_norm": f"{grad_norm:.4f}", "tokens": tokens, "tokens_per_s": f"{tokens_per_s:.1f}"})
        if self._tb:
            self._tb.add_scalar("loss/train", loss, step)
            self._tb.add_scalar("lr", lr, step)
            self._tb.add_scalar("tokens_per_s", tokens_per_s, step)

    def ranking(self, step: int, split: str, loss: float, accuracy: float, tokens: int | None = None) -> None:
        """The ranking loss and how often the true script ranked first: split 'rank' (training, with the
        candidate tokens read so far) or 'rank_valid'."""
        if not self.enabled:
            return
        self._append({"step": step, "split": split, "loss": f"{loss:.6f}", "lr": "", "grad_norm": "",
                      "tokens": "" if tokens is None else tokens, "tokens_per_s": "", "accuracy": f"{accuracy:.4f}"})
        if self._tb:
            self._tb.add_scalar(f"loss/{split}", loss, step)
            self._tb.add_scalar(f"accuracy/{split}", accuracy, step)

    def valid(self, step: int, loss: float | None) -> None:
        if not self.enabled or loss is None:
            return
        self._append({"step": step, "split": "valid", "loss": f"{loss:.6f}", "lr": "", "grad_norm": "",
                      "tokens": "", "tokens_per_s": ""})
        if self._tb:
            self._tb.add_scalar("loss/valid", loss, step)
        self.plot()

    def plot(self) -> Path | None:
        """loss.png: training and validation loss against steps."""
        if not self.enabled:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.read()
        fig, ax = plt.subplots(figsize=(7, 4))
        for split, style in (("train", "-"), ("valid", "o-")):
            points = [(int(r["step"]), float(r["loss"])) for r in rows if r["split"] == split]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=split)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss on the edit script (nats/token)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = self.out / "loss.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def progress(self, total: int, completed: int, enabled: bool):
        return _Progress(total, completed, enabled)

    def close(self) -> None:
        if self.enabled:
            self.plot()
        if self._tb:
            self._tb.close()


class _Progress:
    """step / total, loss, tokens/s, ETA on stderr (rich)."""

    def __init__(self, total: int, completed: int, enabled: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from patchcoder.ground.console import stderr

        self._progress = Progress(
            TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} tok/s"), TimeRemainingColumn(),
            console=stderr(), disable=not enabled,
        )
        self._task = self._progress.add_task("train", total=total, completed=completed, loss="-", rate="-")
        self._tokens, self._time = None, None

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def update(self, step: int, loss: float, tokens: int) -> None:
        import time

        now = time.perf_counter()
        rate = "-"
        if self._tokens is not None and now > self._time:
            rate = f"{(tokens - self._tokens) / (now - self._time):,.0f}"
        self._tokens, self._time = tokens, now
        self._progress.update(self._task, completed=step, loss=f"{loss:.3f}", rate=rate)
