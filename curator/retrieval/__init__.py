"""Retrieval machinery for mining: the guide model, the embedding store, FAISS and BM25."""
