"""patchcoder.tokenizer — code and changes as tokens (DESIGN.md §3).

Installed only under the name `patchcoder.tokenizer`.
"""

if __name__ != "patchcoder.tokenizer":
    raise ImportError(
        f"this folder is installed as 'patchcoder.tokenizer'; import it as that, not as {__name__!r}"
    )

from patchcoder.ground.sstub import classify_sstub  # noqa: E402
from patchcoder.tokenizer.edits import EditOp, EditScript, EditScriptError, edit_script  # noqa: E402
from patchcoder.tokenizer.grammar import EditGrammar  # noqa: E402
from patchcoder.tokenizer.vocab import CodeTokenizer  # noqa: E402

__all__ = ["CodeTokenizer", "EditGrammar", "EditOp", "EditScript", "EditScriptError", "classify_sstub", "edit_script"]
