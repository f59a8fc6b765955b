import pytest

from gato.cli import main
from gato.envs.scores import SEED_BASE, load_scores, measure, write_scores


def test_measure_records_seeds_and_is_reproducible():
    a, b = measure("fake", episodes=4), measure("fake", episodes=4)
    assert a == b
    assert a.random.seeds == [SEED_BASE + i for i in range(4)] and a.expert.episodes == 4
    assert a.expert.mean > a.random.mean


def test_write_scores_merges_rows_and_round_trips(tmp_path):
    path = tmp_path / "scores.json"
    write_scores({"fake": measure("fake", 3)}, path)
    write_scores({"fake-image": measure("fake-image", 3)}, path)
    table = load_scores(path)
    assert set(table) == {"fake", "fake-image"}
    assert table["fake"] == measure("fake", 3)


def test_measured_table_matches_a_fresh_measurement_of_the_fake_task():
    row = load_scores()["fake"]
    again = measure("fake", row.random.episodes, row.random.seeds[0])
    assert again.random.mean == pytest.approx(row.random.mean)
    assert again.expert.mean == pytest.approx(row.expert.mean)


def test_cli_tasks_and_scores(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "cartpole" in out and "state[4] continuous" in out and "discrete 18" in out
    assert main(["scores", "--tasks", "fake", "--episodes", "2"]) == 0
    assert "fake" in capsys.readouterr().out
    assert main(["scores", "--tasks", "nope"]) == 2
