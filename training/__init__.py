"""patchcoder.training — see DESIGN.md. Installed only under the name `patchcoder.training`."""

if __name__ != "patchcoder.training":
    raise ImportError(
        f"this folder is installed as 'patchcoder.training'; import it as that, not as {__name__!r}"
    )
