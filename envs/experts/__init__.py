"""Scripted experts, one per task, used to record demonstrations."""
