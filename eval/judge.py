"""An LLM judge behind any OpenAI-compatible chat endpoint (vLLM, SGLang, llama.cpp, OpenAI).

Only the standard library talks to it (urllib): POST `<url>/chat/completions` with the
model name, the messages and the temperature; the reply's first choice is parsed by the
benchmark's rule. Every reply is kept in `judgments.jsonl` beside the predictions, keyed
by a hash of (model, temperature, messages), so re-scoring never asks twice and a
judged number can be re-derived later. A judged metric carries `judge_record`: the judge
model, temperature, URL, and the prompt template with its sha1 (judged numbers are only
comparable under one judge: eval.md section 2). The API key is read from the environment
variable the user names and is never written anywhere.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dataengine.errors import UsageError

CACHE = "judgments.jsonl"


@dataclass(frozen=True)
class JudgeConfig:
    url: str                     # e.g. http://localhost:8000/v1 (or the full .../chat/completions)
    model: str                   # the judge model's name at that endpoint
    temperature: float = 0.0     # 0 for repeatable scores (DriveLM's script uses 0.6, CODA-LM's 0)
    max_tokens: int = 256
    api_key_env: str = ""        # name of the environment variable holding the key, if any
    timeout_s: float = 120.0

    def __post_init__(self):
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(f"--judge-url {self.url!r}: must start with http:// or https://")
        if not self.model:
            raise UsageError("--judge-model is required with --judge-url")
        if self.api_key_env and self.api_key_env not in os.environ:
            raise UsageError(f"--judge-api-key-env {self.api_key_env}: that environment variable is not set")

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"


class JudgeError(Exception):
    """One judge call that failed (network, HTTP status, malformed reply)."""


def template_record(cfg: JudgeConfig, system: str, user_template: str) -> dict:
    """What is written beside every judged number."""
    prompt = {"system": system, "user": user_template}
    return {"model": cfg.model, "temperature": cfg.temperature, "url": cfg.endpoint,
            "prompt": prompt, "prompt_sha1": hashlib.sha1(json.dumps(prompt, sort_keys=True).encode()).hexdigest()}


class Judge:
    def __init__(self, cfg: JudgeConfig, cache_dir: Path | None = None):
        self.cfg = cfg
        self.cache_path = Path(cache_dir) / CACHE if cache_dir else None
        self._cache = self._read_cache()

    def _read_cache(self) -> dict[str, str]:
        if not self.cache_path or not self.cache_path.is_file():
            return {}
        cache = {}
        for line in self.cache_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                cache[entry["key"]] = entry["reply"]
        return cache

    def _key(self, messages: list[dict]) -> str:
        data = {"model": self.cfg.model, "temperature": self.cfg.temperature, "messages": messages}
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def ask(self, system: str, user: str) -> str:
        """The judge's reply text (cached); raises JudgeError when the call fails."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        key = self._key(messages)
        if key not in self._cache:
            reply = self._post(messages)
            self._cache[key] = reply
            if self.cache_path:
                self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.cache_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "reply": reply}, sort_keys=True, ensure_ascii=False) + "\n")
        return self._cache[key]

    def _post(self, messages: list[dict]) -> str:
        body = json.dumps({"model": self.cfg.model, "messages": messages, "temperature": self.cfg.temperature,
                           "max_tokens": self.cfg.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.cfg.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.cfg.api_key_env]}"
        request = urllib.request.Request(self.cfg.endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
                data = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise JudgeError(f"judge call to {self.cfg.endpoint} failed: {exc}") from None
        try:
            return str(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError):
            raise JudgeError(f"judge reply has no choices[0].message.content: {str(data)[:200]}") from None

    def rate(self, system: str, user: str, parse) -> tuple[float | None, str]:
        """(score or None, reply or the failure's message)."""
        try:
            reply = self.ask(system, user)
        except JudgeError as exc:
            return None, str(exc)
        return parse(reply), reply
