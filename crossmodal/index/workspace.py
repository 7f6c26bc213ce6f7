"""The workspace folder: one index per modality, and the checks to make before any process opens them.

Everything that persists lives under the workspace (default `./workspace`); deleting it resets the system. The
flow YAMLs name the same folders (`${{ ENV.CROSSMODAL_WORKSPACE }}/image_index`, `/text_index`).
"""
from __future__ import annotations

from pathlib import Path

from crossmodal.index import stored_settings
from crossmodal.index.shards import check_shard_count, shard_folders
from crossmodal.modality import MODALITIES


def index_folder(workspace: str | Path, modality: str) -> Path:
    """The root folder of one modality's index (its shards live below it)."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}, expected one of {MODALITIES}")
    return Path(workspace) / f"{modality}_index"


def check_workspace(workspace: str | Path, num_shards: int) -> None:
    """Refuse, with the reason, a workspace whose indexes a flow of `num_shards` shards must not open.

    Raises ShardLayoutError (built with another shard count) or StoreVersionError (written by a newer version).
    Checked in the process that starts a flow, so the user reads one line instead of an executor's traceback.
    """
    for modality in MODALITIES:
        root = index_folder(workspace, modality)
        check_shard_count(root, num_shards)
        for folder in shard_folders(root):
            stored_settings(folder)
