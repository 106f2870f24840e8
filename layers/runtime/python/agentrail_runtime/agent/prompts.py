"""System prompts kept in Amazon Bedrock Prompt Management, referenced by an immutable version.

A :class:`BedrockPrompt` names a prompt (its ID or ARN) and a version number. Nothing calls AWS when it is made: the
runtime resolves it at cold start (``bedrock-agent`` ``GetPrompt``), and the agent version hashes the reference, so
synth never calls AWS and publishing a new prompt version changes nothing until the reference names it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentrail_runtime import aws

#: A prompt's ID (10 letters or digits), as Bedrock Prompt Management gives it.
PROMPT_ID = re.compile(r"^[0-9a-zA-Z]{10}$")
#: A prompt's ARN, without a version: the version is passed on its own.
PROMPT_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:prompt/(?P<id>[0-9a-zA-Z]{10})$")
#: A published version number (1 to 99999); ``DRAFT`` is refused.
PROMPT_VERSION = re.compile(r"^[0-9]{0,4}[1-9][0-9]{0,4}$")
#: Set by local mode in every function it runs: a reference then reads its ``local_file`` (there is no Bedrock).
LOCAL_MODE_ENV = "AGENTRAIL_LOCAL"


class PromptReferenceError(ValueError):
    """A Bedrock prompt reference that cannot give a system prompt; the message names the fix."""


@dataclass(frozen=True)
class BedrockPrompt:
    """A system prompt in Bedrock Prompt Management: one immutable version of one prompt.

    Make one with :func:`prompt_from_bedrock`. The agent version hashes ``identifier``, ``version`` and ``variant``
    (never the text, which is unknown at synth).

    Attributes
    ----------
    identifier:
        The prompt's ID (``PROMPT1234``) or ARN (``arn:aws:bedrock:REGION:ACCOUNT:prompt/PROMPT1234``).
    version:
        The published version number, as a string (``"3"``).
    variant:
        The variant whose text template is the system prompt. Default: the prompt's ``defaultVariant``.
    local_file:
        The text local mode uses instead (it has no Bedrock Prompt Management). Default: none, and local mode
        refuses the reference, naming this fix.
    """

    identifier: str
    version: str
    variant: str | None = None
    local_file: Path | None = None

    @property
    def prompt_id(self) -> str:
        """The prompt's ID, also when ``identifier`` is an ARN."""
        match = PROMPT_ARN.match(self.identifier)
        return match["id"] if match else self.identifier

    @property
    def reference(self) -> dict[str, str | None]:
        """What the agent version hashes and the constructs grant on: the identifier, the version and the variant."""
        return {"bedrock_prompt": self.identifier, "version": self.version, "variant": self.variant}

    def resolve(self, *, client: Any = None) -> str:
        """The text of the chosen variant's text template: ``GetPrompt`` through ``client`` (default: a
        ``bedrock-agent`` client of :func:`agentrail_runtime.aws.client`, botocore's retries), or the
        ``local_file`` in local mode.

        Raises
        ------
        PromptReferenceError
            In local mode without ``local_file``; the variant is not in the prompt; the variant has no text
            template (a chat template), or an empty one.
        """
        if os.getenv(LOCAL_MODE_ENV) and client is None:
            return self._local_text()
        client = client if client is not None else aws.client("bedrock-agent")
        prompt = client.get_prompt(promptIdentifier=self.identifier, promptVersion=self.version)
        variants = {variant["name"]: variant for variant in prompt.get("variants", [])}
        name = self.variant or prompt.get("defaultVariant") or (next(iter(variants)) if len(variants) == 1 else None)
        where = f"Bedrock prompt {self.identifier} version {self.version}"
        if name is None or name not in variants:
            known = ", ".join(sorted(variants)) or "none"
            asked = f"has no variant {name!r}" if name else "has no defaultVariant"
            raise PromptReferenceError(f"{where} {asked} (variants: {known}): pass variant= one of them")
        variant = variants[name]
        text = variant.get("templateConfiguration", {}).get("text", {}).get("text")
        if variant.get("templateType") != "TEXT" or text is None:
            raise PromptReferenceError(
                f"{where}, variant {name!r}, has a {variant.get('templateType', 'missing')} template, not a TEXT one: "
                "a system prompt is a text template; publish a version whose variant is a text prompt, or choose one "
                "with variant="
            )
        if not text.strip():
            raise PromptReferenceError(f"{where}, variant {name!r}, has an empty text template: publish one with text")
        return str(text).strip()

    def _local_text(self) -> str:
        if self.local_file is None:
            raise PromptReferenceError(
                f"local mode has no Bedrock Prompt Management, so the prompt {self.identifier} version {self.version} "
                "cannot be read: pass local_file= (the prompt's text, e.g. prompts/support.md) to prompt_from_bedrock, "
                "or set AGENT_SYSTEM_PROMPT"
            )
        if not self.local_file.is_file():
            raise PromptReferenceError(f"local_file {self.local_file} of Bedrock prompt {self.identifier} does not exist")
        text = self.local_file.read_text(encoding="utf-8").strip()
        if not text:
            raise PromptReferenceError(f"local_file {self.local_file} of Bedrock prompt {self.identifier} is empty")
        return text


def prompt_from_bedrock(
    identifier: str,
    *,
    version: int | str,
    variant: str | None = None,
    local_file: str | Path | None = None,
    beside: str | Path | None = None,
) -> BedrockPrompt:
    """A system prompt kept in Bedrock Prompt Management, by ID or ARN and published version.

    Checks the reference only: nothing calls AWS until the runtime resolves it at cold start (``GetPrompt``), so
    a definition that uses one imports at synth. Give it as the definition's ``system_prompt``.

    Parameters
    ----------
    identifier:
        The prompt's ID or ARN (without a version suffix).
    version:
        A published version number; ``DRAFT`` is refused: it changes without a new version.
    variant:
        The variant to use. Default: the prompt's ``defaultVariant``.
    local_file:
        The prompt's text for local mode; a relative path is read from the folder of ``beside``. Default: none.
    beside:
        A file (pass the module's ``__file__``) or folder that a relative ``local_file`` starts from. Default: the
        current directory.

    Raises
    ------
    PromptReferenceError
        The identifier is neither an ID nor a prompt ARN, or the version is ``DRAFT`` or not a version number.
    """
    identifier = identifier.strip()
    number = str(version).strip()
    if number.upper() == "DRAFT":
        raise PromptReferenceError(
            f"Bedrock prompt {identifier} version DRAFT is not versioned (it changes in place): create a version "
            "(CreatePromptVersion) and pass its number, e.g. version=1"
        )
    if not PROMPT_VERSION.match(number):
        raise PromptReferenceError(f"Bedrock prompt version {version!r} is not a version number: pass e.g. version=1")
    number = str(int(number))  # "01" and 1 name the same version, and hash the same
    if not (PROMPT_ID.match(identifier) or PROMPT_ARN.match(identifier)):
        versioned = re.match(r"^(arn:.*:prompt/[0-9a-zA-Z]{10}):[0-9]+$", identifier)
        fix = (
            f"pass the prompt's ARN without the version suffix ({versioned[1]}) and the version as version="
            if versioned
            else "pass the prompt's ID (10 letters or digits) or ARN (arn:aws:bedrock:REGION:ACCOUNT:prompt/ID)"
        )
        raise PromptReferenceError(f"{identifier!r} is not a Bedrock prompt ID or ARN: {fix}")
    if variant is not None and not variant.strip():
        raise PromptReferenceError("variant is empty: pass a variant's name, or None for the prompt's defaultVariant")
    path = None
    if local_file is not None:
        path = Path(local_file)
        if not path.is_absolute() and beside is not None:
            base = Path(beside)
            path = (base if base.is_dir() else base.parent) / path
    return BedrockPrompt(identifier=identifier, version=number, variant=variant, local_file=path)


__all__ = ["LOCAL_MODE_ENV", "BedrockPrompt", "PromptReferenceError", "prompt_from_bedrock"]
