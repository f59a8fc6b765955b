"""Environments (installed as ``gato.envs``): task registry, scripted experts, fake env."""
