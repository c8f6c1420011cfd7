"""Pipeline packages in, one normalized DAG out.

``load(data)`` takes the bytes of an upload (KFP v2 IR as YAML or JSON, an Argo
Workflow from the KFP v1 compiler, or a .tar.gz/.tgz/.zip holding one such file),
sniffs the format from the bytes and returns a ``LoadedPipeline``; anything it
cannot accept raises ``SpecError`` with a message that says what and where.
"""

from pipelines.specs.errors import SpecError
from pipelines.specs.loader import LoadedPipeline, load, load_document
from pipelines.specs.model import PipelineSpec

__all__ = ["LoadedPipeline", "PipelineSpec", "SpecError", "load", "load_document"]
