"""The wheel ships `gato`, `gato.tokenizers` and `gato.envs`, and no top-level
`tokenizers`/`envs` that would shadow other packages."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_has_no_top_level_tokenizers_or_envs(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("gato_agent-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"gato"}
    for module in ["gato/tokenizers/continuous.py", "gato/envs/__init__.py", "gato/cli.py"]:
        assert module in names
    # Every package directory in the source tree made it into the wheel.
    for pkg in ["tokenizers", "envs", "configs", "gato/data", "envs/experts"]:
        mapped = pkg if pkg.startswith("gato/") else "gato/" + pkg
        assert f"{mapped}/__init__.py" in names

    # Installed into a plain target dir, `import tokenizers` from elsewhere is not ours.
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=600,
    )
    probe = (
        "import importlib.util, sys; sys.path.insert(0, sys.argv[1]);"
        "import gato.tokenizers, gato.envs;"
        "spec = importlib.util.find_spec('tokenizers');"
        "print('OURS' if spec and sys.argv[1] in str(spec.origin) else 'NOT-OURS')"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert out.strip() == "NOT-OURS"
