"""Retrieval: the product catalog, embeddings, the Chroma index, lexical matching and product search."""
