"""gato.averaging: the mean of checkpoints' weights, everything else from the newest."""

import pytest
import torch

from gato.averaging import average_checkpoints
from gato.checkpoint import Checkpoint


def _ckpt(step: int, scale: float, **changes) -> Checkpoint:
    weights = {
        "w": torch.full((2, 3), scale, dtype=torch.float32),
        "h": torch.full((4,), scale, dtype=torch.bfloat16),
        "count": torch.tensor([7], dtype=torch.int64),  # a non-float buffer
    }
    fields = dict(
        model=weights,
        config={"model": {"preset": "debug"}},
        text_model=b"spm",
        optimizer={"state": {}, "param_groups": [{"lr": float(step)}]},
        state={"step": step, "data_position": [step]},
        tensors={"rng": torch.tensor([step])},
    )
    fields.update(changes)
    return Checkpoint(**fields)


def test_weights_are_the_elementwise_mean_in_each_tensors_own_dtype():
    avg = average_checkpoints([_ckpt(10, 1.0), _ckpt(20, 2.0), _ckpt(30, 6.0)])
    assert torch.equal(avg.model["w"], torch.full((2, 3), 3.0))
    assert avg.model["h"].dtype == torch.bfloat16
    assert torch.equal(avg.model["h"], torch.full((4,), 3.0, dtype=torch.bfloat16))
    assert torch.equal(avg.model["count"], torch.tensor([7]))


def test_everything_but_the_weights_comes_from_the_newest_step_whatever_the_order():
    avg = average_checkpoints([_ckpt(30, 6.0), _ckpt(10, 1.0), _ckpt(20, 2.0)])
    assert avg.state["step"] == 30 and avg.state["data_position"] == [30]
    assert avg.optimizer["param_groups"][0]["lr"] == 30.0
    assert torch.equal(avg.tensors["rng"], torch.tensor([30]))
    assert avg.state["averaged_steps"] == [30, 10, 20]


def test_the_inputs_are_left_unchanged():
    a, b = _ckpt(1, 1.0), _ckpt(2, 3.0)
    average_checkpoints([a, b])
    assert torch.equal(a.model["w"], torch.full((2, 3), 1.0))
    assert torch.equal(b.model["w"], torch.full((2, 3), 3.0))


def test_one_checkpoint_is_refused():
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([_ckpt(1, 1.0)])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"config": {"model": {"preset": "cpu-small"}}}, "different model configs"),
        ({"text_model": b"other"}, "different text models"),
        ({"model": {"w": torch.zeros(2, 3)}}, "different parameters: count, h"),
        (
            {"model": {"w": torch.zeros(3, 2), "h": torch.zeros(4, dtype=torch.bfloat16),
                       "count": torch.tensor([7])}},
            "differ in w: \\(2, 3\\)",
        ),
        (
            {"model": {"w": torch.zeros(2, 3), "h": torch.zeros(4, dtype=torch.bfloat16),
                       "count": torch.tensor([8])}},
            "not a float tensor",
        ),
    ],
)  # fmt: skip
def test_checkpoints_of_different_models_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        average_checkpoints([_ckpt(1, 1.0), _ckpt(2, 2.0, **changes)])
