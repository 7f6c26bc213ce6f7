"""The models' code (torch, open_clip, transformers), imported only when a backend is created or its weights are
fetched; the spec modules one level up describe them without importing any of it."""
