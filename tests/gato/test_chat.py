import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gato.chat import ChatSession, chat_loop, trim_history
from gato.checkpoint import Checkpoint, save_checkpoint
from gato.cli import main
from gato.config import ModelConfig
from gato.generate import GenerationConfig
from gato.model import Gato
from gato.tokenizers.chat import encode_prompt
from gato.tokenizers.text import TextTokenizer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    design = (Path(__file__).resolve().parents[2] / "DESIGN.md").read_text(encoding="utf-8")
    corpus = folder / "corpus.txt"
    corpus.write_text(design + "\nUser: hello there\nGato: hi, how are you?\n" * 3)
    return TextTokenizer.train([corpus], folder / "t.model", vocab_size=400)


@pytest.fixture(scope="module")
def checkpoint(text, tmp_path_factory):
    cfg = ModelConfig(
        name="tiny", n_layer=1, n_head=2, d_model=32, d_ff=64, text_size=text.vocab_size,
        context=64, max_obs_tokens=16, patch_channels=8, patch_groups=4, dropout=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Gato(cfg)
    ckpt = Checkpoint(model.state_dict(), {"model": dataclasses.asdict(cfg)}, text.model_bytes)
    return save_checkpoint(tmp_path_factory.mktemp("run"), 1, ckpt)


def conversation(turns: int) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": "You are Gato."}]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"Question number {i}: what is a token?"})
        msgs.append({"role": "assistant", "content": f"Answer {i}: a piece of text."})
    msgs.append({"role": "user", "content": "And the newest question?"})
    return msgs


def test_history_that_fits_is_kept_whole(text):
    msgs = conversation(2)
    kept, ids = trim_history(msgs, text, 10_000)
    assert kept == msgs and ids == encode_prompt(msgs, text)


def test_trimming_drops_oldest_exchanges_and_keeps_the_newest_turn(text):
    msgs = conversation(6)
    full = len(encode_prompt(msgs, text))
    for budget in range(full - 1, 6, -7):
        kept, ids = trim_history(msgs, text, budget)
        assert len(ids) <= budget
        assert kept[-1] == msgs[-1]  # the newest turn is always there
        assert ids[-len(text.encode("Gato:")) :] == text.encode("Gato:")  # ends with the cue
        body = [m for m in kept if m["role"] != "system"]
        assert body == msgs[len(msgs) - len(body) :]  # a suffix: oldest turns went first
        assert body[0]["role"] == "user"  # whole exchanges dropped


def test_system_message_stays_while_an_older_exchange_can_go(text):
    msgs = conversation(3)
    budget = len(encode_prompt([msgs[0], *msgs[-3:]], text))
    kept, _ = trim_history(msgs, text, budget)
    assert kept == [msgs[0], *msgs[-3:]]


def test_a_newest_turn_longer_than_the_budget_keeps_its_end_and_the_cue(text):
    msgs = [{"role": "user", "content": "word " * 200 + "final question?"}]
    kept, ids = trim_history(msgs, text, 20)
    assert kept == msgs and len(ids) == 20
    assert ids == encode_prompt(msgs, text)[-20:]


def test_a_budget_without_room_for_a_message_is_refused(text):
    with pytest.raises(ValueError, match="no room"):
        trim_history(conversation(1), text, len(text.encode("Gato:")))


def test_session_keeps_history_and_stays_within_the_context(text, checkpoint):
    from gato.loading import load_trained

    trained = load_trained(checkpoint)
    session = ChatSession(trained.model, trained.tokenizers, GenerationConfig(16))
    for i in range(6):
        session.reply(f"Tell me about token number {i}, please, in detail.")
    roles = [m["role"] for m in session.messages]
    assert roles == ["user", "assistant"] * 6
    _, ids = trim_history(
        session.messages + [{"role": "user", "content": "x"}], text, session.budget
    )
    assert len(ids) + 16 <= trained.model.cfg.context


def test_chat_loop_exits_cleanly_on_eof_and_interrupt(text, checkpoint):
    from gato.loading import load_trained

    trained = load_trained(checkpoint)
    for end in (EOFError, KeyboardInterrupt):
        lines = iter(["hello", ""])
        out: list[str] = []

        def read(_prompt, lines=lines, end=end):
            try:
                return next(lines)
            except StopIteration:
                raise end from None

        session = ChatSession(trained.model, trained.tokenizers, GenerationConfig(5))
        assert chat_loop(session, read, out.append) == 0
        assert any(line.startswith("gato> ") for line in out)
        assert len(session.messages) == 2


def test_a_line_that_is_not_text_is_reported_and_the_chat_goes_on(text, checkpoint):
    from gato.loading import load_trained

    trained = load_trained(checkpoint)
    undecodable = b"caf\xe9".decode("utf-8", "surrogateescape")  # what argv/stdin give
    lines = iter([undecodable, "hello"])
    out: list[str] = []

    def read(_prompt):
        line = next(lines, None)
        if line is None:
            raise EOFError
        return line

    session = ChatSession(trained.model, trained.tokenizers, GenerationConfig(3))
    assert chat_loop(session, read, out.append) == 0
    assert any(line.startswith("gato: error: text is not valid Unicode") for line in out)
    assert out[-2].startswith("gato> ")  # "hello" was answered; then EOF wrote ""
    assert [m["content"] for m in session.messages if m["role"] == "user"] == ["hello"]


def test_cli_chat_prompt_answers_once(checkpoint, capsys):
    assert main(["chat", "--checkpoint", str(checkpoint), "--prompt", "hello there",
                 "--max-new-tokens", "8"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.endswith("\n") and len(out.splitlines()) == 1


def test_cli_chat_sampling_with_a_seed_is_reproducible(checkpoint, capsys):
    args = ["chat", "--checkpoint", str(checkpoint), "--prompt", "hi", "--max-new-tokens", "8",
            "--temperature", "1.0", "--top-k", "20", "--seed", "7"]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first


def test_cli_chat_interactive_reads_stdin_and_exits_0_on_eof(checkpoint, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n\nhow are you?\n"))
    assert main(["chat", "--checkpoint", str(checkpoint), "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr()
    assert out.out.count("gato> ") == 2 and out.err == ""


@pytest.mark.slow
def test_cli_chat_interactive_ends_on_eof_with_exit_0(checkpoint):
    proc = subprocess.run(
        [sys.executable, "-m", "gato", "chat", "--checkpoint", str(checkpoint),
         "--max-new-tokens", "4"],
        input="hello\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "gato> " in proc.stdout and "Traceback" not in proc.stderr


def test_cli_chat_without_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["chat", "--checkpoint", str(tmp_path / "none"), "--prompt", "x"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
