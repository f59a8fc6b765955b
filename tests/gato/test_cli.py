import subprocess
import sys

import pytest

from gato.cli import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "tokenize" in capsys.readouterr().out


def test_tokenize_round_trips_values_and_discrete(capsys):
    assert main(["tokenize", "--values", "0,1,-0.5", "--discrete", "3,17"]) == 0
    out = capsys.readouterr().out
    assert "continuous [0.0, 1.0, -0.5] -> [32512, 32744, 32313]" in out
    assert "discrete [3, 17] -> [32003, 32017] -> [3, 17]" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tokenize", "--discrete", "1024"], "discrete value 1024 is outside [0, 1024)"),
        (["tokenize", "--values", "nan"], "is not finite"),
        (["tokenize", "--values", "a,b"], "--values: expected comma-separated floats"),
        (["tokenize", "--text", "hi"], "--text needs --text-model"),
        (["tokenize", "--text", "hi", "--text-model", "/no/such.model"], "model not found"),
        (["tokenize"], "nothing to tokenize"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_code_2(argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "gato", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_debug_flag_shows_the_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "gato", "--debug", "tokenize", "--discrete", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def _raise(exc: Exception):
    def handler(args):
        raise exc

    return handler


def test_an_internal_error_is_one_line_and_exit_1_without_traceback(monkeypatch, capsys):
    import gato.cli as cli

    monkeypatch.setattr(cli, "_run_tasks", _raise(RuntimeError("boom\n  in two lines")))
    assert main(["tasks"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "gato: internal error: RuntimeError: boom in two lines (rerun with --debug)"
    ]
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "tasks"])


def test_a_user_error_message_is_kept_on_one_line(monkeypatch, capsys):
    import gato.cli as cli

    monkeypatch.setattr(cli, "_run_tasks", _raise(ValueError("bad value\nsecond line")))
    assert main(["tasks"]) == 2
    assert capsys.readouterr().err == "gato: error: bad value second line\n"


@pytest.mark.parametrize(
    "argv",
    [["nosuchcommand"], ["eval", "--task", "fake"], ["train", "--out", "x", "--stop-at", "a"]],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: gato" in err and "error: " in err.strip().splitlines()[-1]


def test_building_the_parser_loads_neither_torch_nor_gymnasium():
    """`gato --help` and every argument error stay fast: heavy imports wait for a handler."""
    import subprocess
    import sys

    code = (
        "import sys; from gato.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'gymnasium') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
