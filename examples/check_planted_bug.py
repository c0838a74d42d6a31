"""The check that tells whether examples/planted_bug.py does what its docstring says (README's main job runs
it through `patchcoder fix`): exit status 0 if it does, 1 with the failing case named if not."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from planted_bug import remove_stale  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "stale.lock")
        open(path, "w").close()
        if remove_stale(path) is not True or os.path.exists(path):
            print("remove_stale did not delete a file that exists")
            return 1
        try:
            if remove_stale(path) is not False:
                print("remove_stale did not return False for a file that does not exist")
                return 1
        except OSError as e:
            print(f"remove_stale failed on a file that does not exist: {e}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
