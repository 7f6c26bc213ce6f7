"""Join point after the two modality branches: Jina reduces the branches' requests here (by doc id) so that
every document sent comes back to the caller exactly once."""
from typing import Any

from docarray import DocList
from jina import Executor, requests

from serving import jina_patches
from serving.schema import CrossModalDoc

jina_patches.apply()  # before this process builds its gRPC server (see serving/jina_patches.py)


class BranchMerger(Executor):
    @requests
    def merge(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        return docs
