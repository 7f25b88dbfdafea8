"""ESCO for the interview: the client's words matched, their matches offered back.

The flow engine asks this when an occupation or skills step is answered. Words
in Finnish, Swedish or English are matched as written; other languages are
first translated locally (anonymised, bot/gate.py) into English or Finnish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.models import Conversation
from esco import Matcher
from translations.detection import detect
from translations.translator import Translator

logger = logging.getLogger(__name__)

# ESCO labels exist in these; other languages are matched through translation.
MATCHED_AS_WRITTEN = ("fi", "sv", "en")
# Into the first of these that the installed packages reach.
PIVOTS = ("en", "fi")
# How many matches a client sees: a short list reads well on a phone.
OFFERED = 5
SUGGESTED_SKILLS = 6


class EscoVocabulary:
    """The ESCO matcher and translator, bound to one conversation's placeholders."""

    def __init__(
        self,
        matcher: Callable[[], Matcher | None],
        translator: Callable[[], Translator | None],
        conversation: Conversation,
    ):
        # Factories: most answers are not jobs or skills and need no matcher,
        # and only words in other languages need a translator.
        self._matcher = matcher
        self.translator = translator
        self.conversation = conversation

    @property
    def matcher(self) -> Matcher | None:
        return self._matcher()

    @property
    def available(self) -> bool:
        return self.matcher is not None

    def match(
        self, text: str, language: str | None, kind: str, terms: tuple[str, ...] = ()
    ) -> list[dict]:
        """Return the ESCO concepts of `kind` that `text` names, as offer items.

        `terms` are English names a language model read from the answer; their
        matches join those of the client's own words, the best of each first.
        """
        matcher = self.matcher
        if matcher is None:
            return []
        found = detect(text)
        written_in = found.code if found else language or "fi"
        query, query_language = self._matchable(text, written_in)
        matches = matcher.search(query, query_language, kind, OFFERED)
        if terms:
            read = [matcher.search(term, "en", kind, OFFERED) for term in terms]
            matches = _best_of([*read, matches], OFFERED)
        logger.info(
            "conversation %s: %d ESCO %s matches (%s via %s)",
            self.conversation.id,
            len(matches),
            kind,
            written_in,
            query_language,
        )

        return [self._item(matcher, m.uri, language, m.score) for m in matches]

    def suggest_skills(
        self, occupations: list[str], language: str | None
    ) -> list[dict]:
        """Return the essential skills of the confirmed `occupations` to offer."""
        matcher = self.matcher
        if matcher is None:
            return []
        skills = matcher.essential_skills(occupations, SUGGESTED_SKILLS)

        return [self._item(matcher, uri, language, None) for uri in skills]

    def _matchable(self, text: str, language: str) -> tuple[str, str]:
        """Return `text` in a language ESCO's labels are in, if it can be."""
        translator = None if language in MATCHED_AS_WRITTEN else self.translator()
        if translator is None:
            return text, language
        from bot.conversation import anonymise_for

        # Anonymise before translating: names never reach a model. The
        # placeholders stay in the query; they match no label.
        anonymised = anonymise_for(self.conversation, text)
        for pivot in PIVOTS:
            if not translator.can_translate(language, pivot):
                continue
            translation = translator.translate(anonymised, language, pivot)
            if translation.translated and translation.text:
                return translation.text, pivot

        # No package: the multilingual embeddings still see the words.
        return text, language

    @staticmethod
    def _item(
        matcher: Matcher, uri: str, language: str | None, score: float | None
    ) -> dict[str, Any]:
        position = matcher.position[uri]

        return {
            "uri": uri,
            "kind": matcher.kinds[position],
            "code": matcher.codes[position],
            "isco_group": matcher.isco_groups[position],
            "label": matcher.label(uri, language),
            "label_fi": matcher.label(uri, "fi"),
            "score": score,
        }


def _best_of(rankings: list[list[Any]], limit: int) -> list[Any]:
    """Merge rankings by taking turns, each concept once, up to `limit`."""
    merged: dict[str, Any] = {}
    for rank in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking) and ranking[rank].uri not in merged:
                merged[ranking[rank].uri] = ranking[rank]

    return list(merged.values())[:limit]
