"""Environments (installed as ``gato.envs``): task registry, scripted experts, fake env."""

from gato.envs.registry import TaskEntry, entry, expert, make, spec, task_names
from gato.envs.spec import ActionSpec, Episode, ObsField, ObsKind, TaskSpec

__all__ = [
    "ActionSpec",
    "Episode",
    "ObsField",
    "ObsKind",
    "TaskEntry",
    "TaskSpec",
    "entry",
    "expert",
    "make",
    "spec",
    "task_names",
]
