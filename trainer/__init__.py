"""Fine-tuning and evaluation of bi-encoders on curated data (plain rows in, results out).

``finetune`` (sentence-transformers training) and ``evaluate`` (BM25 / dense / hybrid runs
scored by pytrec_eval). The package uses the public names of ``curator.pipeline`` (readers,
fusion) and ``curator.retrieval`` (BM25, guide-model loading), never ``curator.services``,
``curator.ui`` or ``db``; nothing in ``curator.pipeline`` imports it. The tables are read
and written by ``curator.services.train`` and ``curator.services.training_set``.
"""
