"""The error a vision DataModule raises when its dataset is not on disk."""
from __future__ import annotations

import os


class MissingDatasetError(FileNotFoundError):
    """A dataset folder or file is missing; the message names the path and what to place there."""

    def __init__(self, path: str | os.PathLike, what_to_do: str) -> None:
        self.path = str(path)
        self.what_to_do = what_to_do
        super().__init__(f"dataset not found: {self.path}. {what_to_do}")
