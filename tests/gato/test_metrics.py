from gato.metrics import MetricsWriter, read_metrics


def test_rows_are_flushed_and_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    w = MetricsWriter(path, tensorboard=False)
    w.write(1, loss=2.5, task="pong")
    w.write(2, loss=2.0)
    assert [r["loss"] for r in read_metrics(path)] == [2.5, 2.0]  # visible before close
    w.close()
    with open(path, "a") as f:
        f.write('{"step": 3, "lo')  # a kill in the middle of a write
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
