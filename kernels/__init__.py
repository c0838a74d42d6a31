"""patchcoder.kernels — see DESIGN.md. Installed only under the name `patchcoder.kernels`."""

if __name__ != "patchcoder.kernels":
    raise ImportError(
        f"this folder is installed as 'patchcoder.kernels'; import it as that, not as {__name__!r}"
    )
