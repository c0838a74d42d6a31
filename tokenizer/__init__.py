"""patchcoder.tokenizer — see DESIGN.md. Installed only under the name `patchcoder.tokenizer`."""

if __name__ != "patchcoder.tokenizer":
    raise ImportError(
        f"this folder is installed as 'patchcoder.tokenizer'; import it as that, not as {__name__!r}"
    )
