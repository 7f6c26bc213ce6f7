"""Join point after the two modality branches: Jina reduces the branches' requests here (by doc id) so that
every document sent comes back to the caller exactly once."""
from typing import Any

from docarray import DocList

from serving.runtime.executor import CrossModalExecutor, requests
from serving.wire import CrossModalDoc


class BranchMerger(CrossModalExecutor):
    @requests
    def merge(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        return docs
