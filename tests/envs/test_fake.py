import numpy as np
import pytest

import gato.envs as envs
from gato.envs.experts.fake import FakeExpert
from gato.envs.fake import (
    EPISODE_STEPS,
    continuous_target,
    fake_target,
    image_target,
)
from gato.envs.rollout import random_rollout, rollout

TARGETS = {
    "fake": lambda obs: fake_target(obs["state"]),
    "fake-continuous": lambda obs: continuous_target(obs["state"]),
    "fake-image": lambda obs: image_target(obs["image"]),
}


@pytest.mark.parametrize("task", sorted(TARGETS))
def test_the_known_optimal_mapping_scores_one_per_step(task):
    episode = rollout(envs.make(task), TARGETS[task], seed=3, task=task)
    assert len(episode) == EPISODE_STEPS and episode.terminated and not episode.truncated
    assert episode.score == pytest.approx(EPISODE_STEPS)


@pytest.mark.parametrize("task", sorted(TARGETS))
def test_fake_episodes_are_deterministic_given_the_seed(task):
    a = rollout(envs.make(task), envs.expert(task), seed=5, task=task)
    b = rollout(envs.make(task), envs.expert(task), seed=5, task=task)
    c = rollout(envs.make(task), envs.expert(task), seed=6, task=task)
    for key in a.observations:
        np.testing.assert_array_equal(a.observations[key], b.observations[key])
        assert not np.array_equal(a.observations[key], c.observations[key])
    np.testing.assert_array_equal(a.actions, b.actions)


@pytest.mark.parametrize("task", sorted(TARGETS))
def test_random_policy_scores_well_below_the_optimum(task):
    scores = [random_rollout(envs.make(task), seed=s).score for s in range(10)]
    assert np.mean(scores) < 0.6 * EPISODE_STEPS


def test_image_target_is_the_quadrant_of_the_bright_square():
    frame = np.zeros((16, 16, 1), np.uint8)
    frame[9:13, 2:6] = 255  # bottom left
    assert image_target(frame) == 2


def test_rollout_stacks_observations_per_key_with_the_space_dtype():
    ep = rollout(envs.make("fake-image"), envs.expert("fake-image"), seed=0, task="fake-image")
    assert ep.observations["image"].shape == (EPISODE_STEPS, 16, 16, 1)
    assert ep.observations["image"].dtype == np.uint8
    assert ep.actions.shape == (EPISODE_STEPS,) and ep.actions.dtype == np.int64
    assert ep.rewards.dtype == np.float32 and ep.seed == 0 and ep.task == "fake-image"
    cont = rollout(envs.make("fake-continuous"), envs.expert("fake-continuous"), seed=0)
    assert cont.actions.shape == (EPISODE_STEPS, 1) and cont.actions.dtype == np.float32


def test_rollout_max_steps_truncates():
    ep = rollout(envs.make("fake"), envs.expert("fake"), seed=0, max_steps=4)
    assert len(ep) == 4 and ep.truncated and not ep.terminated


def test_rollout_with_a_labeler_plays_the_policy_and_records_the_labels():
    env = envs.make("fake")
    always_zero = lambda obs: 0  # noqa: E731
    played = rollout(env, always_zero, seed=3)
    labelled = rollout(env, always_zero, seed=3, labeler=FakeExpert(epsilon=0.0))
    # The env followed the policy: same states, same rewards as playing it alone ...
    np.testing.assert_array_equal(labelled.observations["state"], played.observations["state"])
    np.testing.assert_array_equal(labelled.rewards, played.rewards)
    # ... while the recorded actions are the labeler's answers on those states.
    labels = [fake_target(s) for s in played.observations["state"]]
    np.testing.assert_array_equal(labelled.actions, labels)
    assert not np.array_equal(labelled.actions, played.actions)
