"""Data builders and readers: episode store, captions, dialogues, text corpus."""
