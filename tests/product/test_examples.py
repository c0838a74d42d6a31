"""The examples in examples/ run."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_batch_repair_example(fixer, tmp_path):
    (tmp_path / "geometry.py").write_text("def area(width, height):\n    return width + height\n")
    (tmp_path / "other.py").write_text("x = 1\n")
    result = subprocess.run([sys.executable, str(EXAMPLES / "batch_repair.py"), "--checkpoint", str(fixer),
                             "geometry.py", "other.py"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "+    return width * height" in result.stdout
    assert "# other.py: no change proposed" in result.stdout
