"""The OpenAI-compatible backend: OpenAI, Azure OpenAI, EU providers, vLLM, Ollama.

Built on the `openai` package pointed at OPENAI_BASE_URL. The client itself
retries 429s, 5xx and dropped connections with backoff (LLM_MAX_RETRIES);
what still fails becomes a `BackendError` for bot/llm.py's circuit breaker.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import openai

from bot.llm import BackendError, Completion

logger = logging.getLogger(__name__)


class OpenAICompatible:
    """Chat completions from any server that speaks OpenAI's API."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        model: str | None,
        timeout: float,
        max_retries: int,
    ):
        self.model = model or ""
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
        )

    def chat(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any] | None,
        name: str = "answer",
    ) -> Completion:
        """Ask for a completion; with `schema` (named `name`), for JSON fitting it."""
        options: dict[str, Any] = {}
        if schema is not None:
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64],
                    "schema": schema,
                    "strict": True,
                },
            }
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=0, **options
            )
        except openai.APITimeoutError as exc:
            message = "the model did not answer in time"
            raise BackendError(message, timeout=True) from exc
        except openai.APIStatusError as exc:
            # The body may quote the prompt; only the status is kept.
            message = f"the model server answered {exc.status_code}"
            raise BackendError(message) from exc
        except openai.APIError as exc:
            message = f"the model server failed: {type(exc).__name__}"
            raise BackendError(message) from exc
        if not response.choices or response.choices[0].message.content is None:
            raise BackendError("the model server sent no answer")
        usage = response.usage

        return Completion(
            text=response.choices[0].message.content,
            model_version=response.model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )
