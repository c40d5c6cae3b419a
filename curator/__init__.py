"""curator: a data-curation workbench for fine-tuning text-embedding models."""

__version__ = "0.1.0"
