"""A client's question between answers: local services from flows/services/, cited,
or "a counsellor will answer" for benefits, legal matters and residence permits.

The conversation asks this when a message ends in a question mark and does not
answer the step. Without a language model the matching services are listed as
they are written; with one, it words an answer from those entries only.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.llm import LanguageModel, ModelUnavailableError, Prompt, prompt_language
from esco.text import stems
from flows import FlowSet
from flows.answers import find_topic
from flows.rules import Service
from translations import text

if TYPE_CHECKING:
    from bot.models import Conversation
    from translations.translator import Translator

logger = logging.getLogger(__name__)

TEMPLATE = "service_question@1"
# Services named in one answer: a short list reads well on a phone.
LIMIT = 3
MAX_ANSWER = 500
# Service texts are written in these; a question in another language is
# translated into English for finding them.
SERVICE_LANGUAGES = ("fi", "en")
LOCAL_SERVICE = "local_service"
# The model may only say what the entries say: nothing like a link, a number
# to call or a placeholder of the anonymiser in its words (links come from
# the entries themselves, added below its answer).
UNSAFE_ANSWER = re.compile(r"<|>|https?:|www\.|@|\d{4,}|\{|\}")

INSTRUCTIONS = """\
You help the municipal employment services of {area}, Finland. A job seeker \
asked the question below, in {language}, by text message. Answer only from \
these local service entries, and cite the ids of the entries you used:

{entries}

Return JSON:
- topic: "{local}" when the entries answer the question; "benefits" for \
unemployment benefits, Kela, allowances or any decision about money; "legal" \
for legal advice, contracts or disputes; "residence_permit" for permits, visas, \
citizenship or asylum; "other" for anything else or when the entries do not \
answer it
- answer: for "{local}", two or three short, plain sentences in {language} \
that say which service fits and why; otherwise null. Do not add addresses, \
phone numbers or links, and never promise a decision.
- cites: the ids of the entries your answer uses"""


@dataclass(frozen=True)
class Answered:
    """The replies to a question, and what the counsellor may know of it."""

    replies: list[str]
    topic: str
    cited: tuple[str, ...] = ()


class ServiceDesk:
    """Answer one conversation's questions about local services."""

    def __init__(
        self,
        flows: FlowSet,
        conversation: Conversation,
        model: LanguageModel | None = None,
        translator: Callable[[], Translator | None] | None = None,
        area: str = "Mikkeli",
    ):
        self.flows = flows
        self.services = flows.rules.services
        self.conversation = conversation
        self.model = model
        self.translator = translator
        self.area = area

    def answer(self, question: str, language: str | None) -> Answered:
        """Return the replies to `question`; never raises for a model's failure."""
        topic = find_topic(self.flows.counsellor_only, question)
        if topic is not None:
            # Never for a model or a list of services: a counsellor answers.
            return self._for_counsellor(topic, language)
        found = retrieve(self.services, self._searchable(question, language))
        if self.model is not None:
            answered = self._ask_model(question, language, found)
            if answered is not None:
                return answered
        if not found:
            return self._for_counsellor("other", language)
        ids = tuple(service.id for service in found)
        logger.info(
            "conversation %s: question answered from %d services",
            self.conversation.id,
            len(ids),
        )
        lines = [text("questions.services", language), *cite(found, language)]

        return Answered(["\n".join(lines)], LOCAL_SERVICE, ids)

    def _for_counsellor(self, topic: str, language: str | None) -> Answered:
        logger.info("conversation %s: question for a counsellor", self.conversation.id)
        word = text("command.human", language).split(",")[0].strip()

        return Answered([text("questions.counsellor", language, word=word)], topic)

    def _searchable(self, question: str, language: str | None) -> tuple[str, str]:
        """Return the question in a language the service entries are written in."""
        language = language or "fi"
        translator = self.translator() if self.translator else None
        if language in SERVICE_LANGUAGES or translator is None:
            return question, language
        if not translator.can_translate(language, "en"):
            return question, language
        from bot.conversation import anonymise_for

        translation = translator.translate(
            anonymise_for(self.conversation, question), language, "en"
        )
        if translation.translated and translation.text:
            return translation.text, "en"

        return question, language

    def _ask_model(
        self, question: str, language: str | None, found: list[Service]
    ) -> Answered | None:
        """Let the model word an answer from the entries; None to go without it."""
        from bot.conversation import anonymise_for

        # The catalogue is short: with no match, the model reads all of it.
        entries = found or list(self.services.values())
        prompt = Prompt(
            purpose="service_question",
            template=TEMPLATE,
            instructions=INSTRUCTIONS.format(
                area=self.area,
                language=prompt_language(language),
                entries="\n".join(_entry(service) for service in entries),
                local=LOCAL_SERVICE,
            ),
            client_text=(anonymise_for(self.conversation, question),),
        )
        ids = [service.id for service in entries]
        try:
            reply = self.model.complete_json(prompt, answer_schema(ids))
        except ModelUnavailableError:
            return None
        topic = reply["topic"]
        if topic in self.flows.counsellor_only:
            return self._for_counsellor(topic, language)
        if topic != LOCAL_SERVICE:
            return self._for_counsellor("other", language)
        cited = [self.services[id_] for id_ in dict.fromkeys(reply["cites"])]
        words = " ".join((reply.get("answer") or "").split())
        if not cited or not words or UNSAFE_ANSWER.search(words):
            logger.info(
                "conversation %s: the model's answer was refused", self.conversation.id
            )
            return None
        logger.info(
            "conversation %s: question answered by the model from %d services",
            self.conversation.id,
            len(cited),
        )
        lines = [words, *cite(cited[:LIMIT], language)]

        return Answered(["\n".join(lines)], LOCAL_SERVICE, tuple(s.id for s in cited))


def retrieve(
    services: dict[str, Service], question: tuple[str, str], limit: int = LIMIT
) -> list[Service]:
    """Return the services whose name or audience shares words with `question`.

    Words are compared as stems, in the question's language and in the
    languages the entries are written in; a stem also matches inside a
    compound ("yrityks" in "uusyrityskeskus") or an inflected form of it.
    """
    words, language = question
    asked = set(stems(words, language, drop_stopwords=True))
    if not asked:
        return []
    scored = []
    for service in services.values():
        names: set[str] = set()
        known: set[str] = set()
        for code in SERVICE_LANGUAGES:
            keywords = ", ".join(service.keywords.get(code, ()))
            for written, into in (
                (f"{service.name.get(code, '')} {keywords}", names),
                (service.audience.get(code, ""), known),
            ):
                into.update(stems(written, language, drop_stopwords=True))
                into.update(stems(written, code, drop_stopwords=True))
        # Short stems ("mis", "apu") are question words more often than
        # topics; they count only as a whole keyword ("cv").
        shared = [
            stem
            for stem in asked
            if stem in names or (len(stem) >= 4 and _found(stem, names | known))
        ]
        # A word of the name or the keywords weighs more than one of the
        # audience's description.
        score = len(shared) + sum(_found(stem, names) for stem in shared)
        if shared:
            scored.append((score, service.id, service))
    scored.sort(key=lambda item: (-item[0], item[1]))

    return [service for _, _, service in scored[:limit]]


def _found(stem: str, known: set[str]) -> bool:
    """True when `stem` is among `known`, inside one, or shares most of its start."""
    if stem in known:
        return True
    for word in known:
        if len(stem) >= 5 and stem in word:
            return True
        common = len(os.path.commonprefix([stem, word]))
        if common >= max(4, 0.75 * min(len(stem), len(word))):
            return True

    return False


def cite(services: list[Service], language: str | None) -> list[str]:
    """Name each service with its web address, as the entries give them."""
    code = language if language in SERVICE_LANGUAGES else "en"
    lines = []
    for service in services:
        name = service.name.get(code) or service.name.get("fi", service.id)
        web = service.contact.get("web")
        lines.append(f"- {name}: {web}" if web else f"- {name}")

    return lines


def answer_schema(ids: list[str]) -> dict[str, Any]:
    topics = [LOCAL_SERVICE, "benefits", "legal", "residence_permit", "other"]

    return {
        "type": "object",
        "properties": {
            "topic": {"type": "string", "enum": topics},
            "answer": {"type": ["string", "null"], "maxLength": MAX_ANSWER},
            "cites": {"type": "array", "items": {"type": "string", "enum": ids}},
        },
        "required": ["topic", "answer", "cites"],
        "additionalProperties": False,
    }


def _entry(service: Service) -> str:
    """One service as the model reads it: id, names and audience in fi and en."""
    parts = [f"[{service.id}]"]
    for code in SERVICE_LANGUAGES:
        if code in service.name:
            parts.append(f"{service.name[code]}: {service.audience.get(code, '')}")

    return " ".join(parts)
