"""curator: a data-curation workbench for fine-tuning text-embedding models."""

import os

# litellm fetches a price map from the internet at import unless told otherwise; curator
# never needs that (its bundled copy is used), so say so before anything imports it
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
