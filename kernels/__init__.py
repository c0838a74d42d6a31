"""patchcoder.kernels — see DESIGN.md. Installed only under the name `patchcoder.kernels`."""

if __name__ != "patchcoder.kernels":
    raise ImportError(
        f"this folder is installed as 'patchcoder.kernels'; import it as that, not as {__name__!r}"
    )

from patchcoder.kernels.attention import BACKENDS, attention, band_mask, cached_attention  # noqa: E402

__all__ = ["BACKENDS", "attention", "band_mask", "cached_attention"]
