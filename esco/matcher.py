"""Match a client's words to ESCO occupations and skills, with a score.

Two signals over the local index: trigrams of stemmed words against every
label (preferred, alternative, hidden; all languages), and sentence embeddings
against the preferred labels. Each concept keeps its best label under each.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from esco.embeddings import E5Embedder
from esco.index import (
    ALTERNATIVE,
    HIDDEN,
    ISCO_GROUP,
    OCCUPATION,
    PREFERRED,
    SKILL,
    connect,
    read_meta,
)
from esco.text import expand, parts, stems, trigrams

logger = logging.getLogger(__name__)

KIND_CODES = {OCCUPATION: 0, SKILL: 1}
# An alternative label is as good as the preferred one; a hidden one is often a
# misspelling or an outdated term, so it counts a little less.
ROLE_WEIGHTS = {PREFERRED: 1.0, ALTERNATIVE: 1.0, HIDDEN: 0.9}
# Weights of the lexical and the embedding score, and the cosine range that
# the embedding score spans (e5's cosines of unrelated texts are ~0.75).
LEXICAL_WEIGHT = 0.4
COSINE_FLOOR, COSINE_CEILING = 0.78, 0.95
# Below this, a match is not worth showing a client.
MIN_SCORE = 0.3
# Shown in this order when a label is missing in the client's language.
FALLBACK_LANGUAGES = ("en", "fi")


@dataclass(frozen=True)
class Match:
    """One ESCO concept that matches, with the label to show and a 0-1 score."""

    uri: str
    kind: str
    code: str | None
    isco_group: str | None
    label: str
    score: float
    query: str


class Matcher:
    """The whole index in memory, ready to search; build it with `load`."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        embedder: E5Embedder | None,
        path: Path | None = None,
    ):
        self.path = path
        self.embedder = embedder
        self.lexical_weight = LEXICAL_WEIGHT
        meta = read_meta(connection)
        self.version = meta.get("version", "unknown")
        self.languages = tuple(filter(None, meta.get("languages", "").split(",")))
        self._load_concepts(connection)
        self._load_labels(connection)
        self._load_vectors(connection, meta.get("embedding_model"))
        self.essential: dict[str, list[str]] = defaultdict(list)
        for occupation, skill in connection.execute(
            "SELECT occupation_uri, skill_uri FROM relation "
            "WHERE relation = 'essential' ORDER BY occupation_uri, skill_uri"
        ):
            self.essential[occupation].append(skill)

    @classmethod
    def load(cls, path: Path, embedder: E5Embedder | None = None) -> Matcher:
        with connect(path) as connection:
            return cls(connection, embedder, path)

    def _load_concepts(self, connection: sqlite3.Connection) -> None:
        rows = connection.execute(
            "SELECT uri, kind, code, isco_group, skill_type FROM concept ORDER BY uri"
        ).fetchall()
        self.uris = [row[0] for row in rows]
        self.position = {uri: i for i, uri in enumerate(self.uris)}
        self.kinds = [row[1] for row in rows]
        self.kind_codes = np.array([KIND_CODES.get(row[1], 9) for row in rows])
        self.codes = [row[2] for row in rows]
        self.isco_groups = [row[3] for row in rows]
        self.skill_types = [row[4] for row in rows]
        self.isco_codes = {row[2]: row[0] for row in rows if row[1] == ISCO_GROUP}

    def _load_labels(self, connection: sqlite3.Connection) -> None:
        self.preferred: dict[tuple[int, str], str] = {}
        label_concepts, weights, grams_of = [], [], []
        for uri, language, role, text in connection.execute(
            "SELECT uri, language, role, text FROM label ORDER BY uri, language, text"
        ):
            concept = self.position[uri]
            if role == PREFERRED:
                self.preferred[(concept, language)] = text
            if self.kinds[concept] not in KIND_CODES:
                continue
            grams = trigrams(stems(text, language))
            if grams:
                label_concepts.append(concept)
                weights.append(ROLE_WEIGHTS[role])
                grams_of.append(grams)
        self.label_concepts = np.array(label_concepts, dtype=np.int32)
        self.label_weights = np.array(weights, dtype=np.float32)

        postings: dict[str, list[int]] = defaultdict(list)
        for label, grams in enumerate(grams_of):
            for gram in grams:
                postings[gram].append(label)
        count = max(len(grams_of), 1)
        self.idf = {g: math.log(1 + count / len(ids)) for g, ids in postings.items()}
        self.max_idf = math.log(1 + count)
        self.postings = {
            gram: np.array(ids, dtype=np.int32) for gram, ids in postings.items()
        }
        self.label_norms = np.array(
            [sum(self.idf[g] for g in grams) for grams in grams_of], dtype=np.float32
        )

    def _load_vectors(self, connection: sqlite3.Connection, model: str | None) -> None:
        self.vectors = np.zeros((0, 384), dtype=np.float32)
        self.vector_concepts = np.zeros(0, dtype=np.int32)
        if self.embedder is None or model != self.embedder.name:
            if self.embedder is not None:
                logger.warning("esco: the index has no embeddings of this model")
            self.embedder = None
            return
        concepts, blobs = [], []
        for uri, blob in connection.execute(
            "SELECT l.uri, v.embedding FROM label l JOIN vector v ON v.text = l.text "
            "WHERE l.role = ? ORDER BY l.uri, l.language",
            (PREFERRED,),
        ):
            concept = self.position[uri]
            if self.kinds[concept] in KIND_CODES:
                concepts.append(concept)
                blobs.append(blob)
        if blobs:
            matrix = np.frombuffer(b"".join(blobs), dtype=np.float16)
            self.vectors = matrix.reshape(len(blobs), -1).astype(np.float32)
            self.vector_concepts = np.array(concepts, dtype=np.int32)

    @property
    def embedded(self) -> bool:
        return self.embedder is not None and len(self.vectors) > 0

    def search(
        self, text: str, language: str, kind: str, limit: int = 5
    ) -> list[Match]:
        """Return up to `limit` concepts of `kind` for `text`, best first.

        A text that names several jobs ("hitsaaja ja trukkikuski") is split,
        and the best matches of each part take turns at the top.
        """
        ranked = [
            self._search_part(part, language, kind, limit) for part in parts(text)
        ]
        merged: dict[str, Match] = {}
        for rank in range(limit):
            for matches in ranked:
                if rank < len(matches) and matches[rank].uri not in merged:
                    merged[matches[rank].uri] = matches[rank]

        return list(merged.values())[:limit]

    def _search_part(
        self, text: str, language: str, kind: str, limit: int
    ) -> list[Match]:
        weight = self.lexical_weight if self.embedded else 1.0
        if self.embedded and language not in self.languages:
            # No label shares its words or script: only the embeddings can see it.
            weight = 0.0
        text = expand(text, language)
        scores = weight * self._lexical(text, language)
        if self.embedded and weight < 1:
            scores += (1 - weight) * self._semantic(text)
        scores[self.kind_codes != KIND_CODES[kind]] = 0
        best = np.argsort(-scores, kind="stable")[:limit]

        return [
            self._match(int(i), float(scores[i]), language, text)
            for i in best
            if scores[i] >= MIN_SCORE
        ]

    def _lexical(self, text: str, language: str) -> np.ndarray:
        """Per concept: how well its best label and the text cover each other."""
        scores = np.zeros(len(self.uris), dtype=np.float32)
        grams = trigrams(stems(text, language, drop_stopwords=True))
        if not grams or not len(self.label_concepts):
            return scores
        shared = np.zeros(len(self.label_concepts), dtype=np.float32)
        for gram in grams:
            if gram in self.postings:
                shared[self.postings[gram]] += self.idf[gram]
        query_norm = sum(self.idf.get(g, self.max_idf) for g in grams)
        hit = np.flatnonzero(shared)
        label_cover = shared[hit] / self.label_norms[hit]
        query_cover = shared[hit] / query_norm
        f_score = 2 * label_cover * query_cover / (label_cover + query_cover)
        weighted = f_score * self.label_weights[hit]
        np.maximum.at(scores, self.label_concepts[hit], weighted)

        return scores

    def _semantic(self, text: str) -> np.ndarray:
        """Per concept: the cosine of its closest preferred label, rescaled to 0-1."""
        assert self.embedder is not None  # noqa: S101 - checked by the caller
        scores = np.zeros(len(self.uris), dtype=np.float32)
        cosines = self.vectors @ self.embedder.embed([text])[0]
        np.maximum.at(scores, self.vector_concepts, cosines)
        span = COSINE_CEILING - COSINE_FLOOR

        return np.clip((scores - COSINE_FLOOR) / span, 0, 1)

    def _match(self, concept: int, score: float, language: str, query: str) -> Match:
        return Match(
            uri=self.uris[concept],
            kind=self.kinds[concept],
            code=self.codes[concept],
            isco_group=self.isco_groups[concept],
            label=self.label(self.uris[concept], language),
            score=round(min(score, 1.0), 3),
            query=query,
        )

    def label(self, uri: str, language: str | None) -> str:
        """Return the preferred label in `language`, else in English or Finnish."""
        concept = self.position.get(uri)
        if concept is None:
            return uri
        for code in (language, *FALLBACK_LANGUAGES, *self.languages):
            if code and (concept, code) in self.preferred:
                return self.preferred[(concept, code)]

        return uri

    def isco_label(self, code: str | None, language: str | None) -> str | None:
        """Return the name of the ISCO group with `code`, if imported."""
        uri = self.isco_codes.get(code or "")

        return self.label(uri, language) if uri else None

    def essential_skills(self, occupations: list[str], limit: int = 6) -> list[str]:
        """Return the essential skills of `occupations` to offer a client.

        Skills that several of the occupations share come first, then skills
        before knowledge, then the shortest labels, which read best on a phone.
        """
        counts: dict[str, int] = defaultdict(int)
        for occupation in occupations:
            for skill in self.essential.get(occupation, []):
                counts[skill] += 1

        def order(skill: str) -> tuple[int, int, int, str]:
            concept = self.position[skill]
            knowledge = int(self.skill_types[concept] == "knowledge")
            length = len(self.label(skill, "en").split())
            return (-counts[skill], knowledge, length, skill)

        return sorted(counts, key=order)[:limit]
