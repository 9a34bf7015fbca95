"""A small BM25 index over token lists, with postings as numpy arrays.

Why our own and not bm25s or SQLite FTS5: our units are short Chinese passages tokenised by our own
analyser (jieba words + character bigrams, see knowledge/analyzer.py); FTS5's trigram tokenizer cannot
match two-character terms such as 复核 or 备案, and bm25s would add scipy for what is ~60 lines here.
The per-posting BM25 term weight is computed once at build time, so a query is one vectorised
`scores[ids] += idf * weight` per query term: O(postings of the query's terms), which keeps a
12,000-article base well inside the latency target (see `make bench`).
"""
from __future__ import annotations

import math
from pathlib import Path
from collections import Counter

import numpy as np

from knowledge import yamlio

_TUNED = yamlio.pipeline()["analysis"]  # how they were chosen: there
K1 = float(_TUNED["bm25_k1"])
B = float(_TUNED["bm25_b"])


class BM25Index:
    def __init__(self, n_docs: int, postings: dict[str, tuple[np.ndarray, np.ndarray]], idf: dict[str, float]):
        self.n_docs = n_docs
        self.postings = postings
        self.idf = idf

    @classmethod
    def build(cls, docs: list[list[str]]) -> "BM25Index":
        n = len(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.float32)
        avg = float(lengths.mean()) if n else 1.0
        raw: dict[str, tuple[list[int], list[float]]] = {}
        for doc_id, tokens in enumerate(docs):
            norm = K1 * (1 - B + B * (lengths[doc_id] / avg if avg else 1.0))
            for term, tf in Counter(tokens).items():
                ids, weights = raw.setdefault(term, ([], []))
                ids.append(doc_id)
                weights.append(tf * (K1 + 1) / (tf + norm))
        postings = {t: (np.asarray(ids, dtype=np.int32), np.asarray(w, dtype=np.float32)) for t, (ids, w) in raw.items()}
        idf = {t: math.log(1 + (n - len(ids) + 0.5) / (len(ids) + 0.5)) for t, (ids, _) in raw.items()}
        return cls(n, postings, idf)

    def scores(self, query: dict[str, float]) -> np.ndarray:
        """BM25 score of every document for a query given as {term: query weight}."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for term, qw in query.items():
            posting = self.postings.get(term)
            if posting is not None:
                ids, weights = posting
                out[ids] += weights * (self.idf[term] * qw)
        return out

    def __contains__(self, term: str) -> bool:
        return term in self.postings
