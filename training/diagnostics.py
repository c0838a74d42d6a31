"""Per-loop diagnostics of a looped model (DESIGN.md §4, LoopCoder-v2's gain–cost view).

For each loop r, on a batch of held-out tokens (h_r is the loop's output after the shared norm):
step size ‖h_r − h_{r−1}‖, update alignment cos(Δ_r, Δ_{r−1}), effective rank of the RMS-normalised
hidden matrix, output shift KL(p_r ‖ p_{r−1}) through the head (logit lens), mean G-SWA gate, and the
offset cost Ω_r = mean_i ‖h_{r−1,i} − h_{r−1,i−1}‖ that the CLP shift pays. A value that a loop does not
have (loop 0 has no predecessor, no gate) is NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

NAN = float("nan")


@dataclass
class LoopDiagnostics:
    loops: list[int]
    step_size: list[float]  # mean over tokens of ‖h_r − h_{r−1}‖
    update_alignment: list[float]  # mean cos(Δ_r, Δ_{r−1}), Δ_r = h_r − h_{r−1}
    effective_rank: list[float]  # exp(entropy of normalised singular values)
    logit_shift_kl: list[float]  # mean KL(softmax(head(h_r)) ‖ softmax(head(h_{r−1})))
    mean_gate: list[float]  # > 0.5: the global cache is preferred over the local window
    offset_cost: list[float]  # Ω_r = mean_i ‖h_{r−1,i} − h_{r−1,i−1}‖

    @property
    def metrics(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "loops"]

    def rows(self) -> list[dict]:
        """One dict per loop: {"loop": r, "step_size": …, …}."""
        return [{"loop": r, **{m: getattr(self, m)[i] for m in self.metrics}} for i, r in enumerate(self.loops)]

    def table(self) -> str:
        """A plain-text table, loops as rows."""
        head = ["loop", *self.metrics]
        lines = ["  ".join(f"{h:>16}" for h in head)]
        for row in self.rows():
            cells = [f"{row['loop']:>16}"] + [
                f"{'-':>16}" if math.isnan(row[m]) else f"{row[m]:>16.4f}" for m in self.metrics
            ]
            lines.append("  ".join(cells))
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """One panel per diagnostic, loops on the x axis, written as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        metrics = self.metrics
        cols = 3
        fig, axes = plt.subplots(math.ceil(len(metrics) / cols), cols, figsize=(4 * cols, 3 * 2), squeeze=False)
        for ax, name in zip(axes.flat, metrics, strict=False):
            ax.plot(self.loops, getattr(self, name), marker="o")
            ax.set_title(name.replace("_", " "))
            ax.set_xlabel("loop r")
            ax.set_xticks(self.loops)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(metrics) :]:
            ax.axis("off")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def effective_rank(h: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of the RMS-normalised (tokens × width) matrix."""
    x = h.reshape(-1, h.shape[-1]).float()
    x = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-12)
    s = torch.linalg.svdvals(x)
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def loop_diagnostics(model, input_ids: torch.Tensor) -> LoopDiagnostics:
    """The diagnostics of a PatchCoder `model` on a batch of held-out tokens `input_ids` (B, T)."""
    was_training = model.training
    model.eval()
    trace = model.run_loops(input_ids, capture=True)
    model.train(was_training)
    hs = [h.float() for h in trace.hidden]  # R × (B, T, C)
    logp = [F.log_softmax(model.head(h.to(model.head.weight.dtype)).float(), dim=-1) for h in hs]
    out = {f.name: [] for f in fields(LoopDiagnostics)}
    for r, h in enumerate(hs):
        out["loops"].append(r)
        out["effective_rank"].append(effective_rank(h))
        if r == 0:
            for m in ("step_size", "update_alignment", "logit_shift_kl", "mean_gate", "offset_cost"):
                out[m].append(NAN)
            continue
        delta = h - hs[r - 1]  # (B, T, C)
        out["step_size"].append(float(delta.norm(dim=-1).mean()))
        if r >= 2:
            out["update_alignment"].append(float(F.cosine_similarity(delta, hs[r - 1] - hs[r - 2], dim=-1).mean()))
        else:
            out["update_alignment"].append(NAN)
        kl = (logp[r].exp() * (logp[r] - logp[r - 1])).sum(dim=-1)  # KL(p_r ‖ p_{r-1}) per token
        out["logit_shift_kl"].append(float(kl.mean()))
        gates = trace.gates[r - 1]
        out["mean_gate"].append(float(torch.stack([g.float().mean() for g in gates]).mean()))
        prev = hs[r - 1]
        step = (prev[:, 1:] - prev[:, :-1]).norm(dim=-1)  # (B, T-1)
        out["offset_cost"].append(float(step.mean()) if step.numel() else NAN)
    return LoopDiagnostics(**out)
