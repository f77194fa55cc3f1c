"""Chat formats: a conversation becomes text segments, each marked trained or not.

The training labels come from these segments (assistant content and its end marker are
trained; system, user and role headers are not), so masking never depends on re-finding
text in a rendered string. Each format also carries the equivalent Jinja chat template,
saved with every model so HF's `apply_chat_template` renders exactly what training saw
(tests/vlm/test_encode.py checks the two agree). Both keep a turn's content in order:
the renderer's `1: <image> 2: <image> ...` stays interleaved, unlike the official
LLaVA-OneVision template, which moves every image to the front of the turn.

Formats are registered by name; `detect` picks one from the tokenizer's special tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

from dataengine.errors import UsageError

ROLES = ("system", "user", "assistant")

# One content macro for every template: a string as is, or typed items in their order.
_CONTENT = ("{%- macro content(c) -%}{%- if c is string -%}{{ c }}{%- else -%}{%- for item in c -%}"
            "{%- if item['type'] == 'image' -%}{{ '<image>' }}{%- elif item['type'] == 'video' -%}{{ '<video>' }}"
            "{%- else -%}{{ item['text'] }}{%- endif -%}{%- endfor -%}{%- endif -%}{%- endmacro -%}")


@dataclass(frozen=True)
class ChatFormat:
    """A turn renders as header(role) + content + end; assistant content + end are trained."""

    name: str
    begin: str             # once, before the first turn
    header: str            # with {role}
    end: str               # closes a turn; trained after assistant content
    after: str             # follows `end` (not trained)
    system: str            # default system prompt when the conversation has none
    marker: str            # a special token whose presence in a vocabulary identifies the format

    def segments(self, conversation: list[dict], add_generation_prompt: bool = False) -> list[tuple[str, bool]]:
        """(text, trained) pieces whose concatenation is the rendered conversation."""
        turns = list(conversation)
        if not turns or turns[0].get("role") != "system":
            turns.insert(0, {"role": "system", "content": self.system})
        out: list[tuple[str, bool]] = [(self.begin, False)] if self.begin else []
        for turn in turns:
            role = turn.get("role")
            if role not in ROLES or not isinstance(turn.get("content"), str):
                raise ValueError(f"turn {turn!r}: role must be one of {ROLES} and content a string")
            out.append((self.header.format(role=role), False))
            if role == "assistant":
                out += [(turn["content"] + self.end, True), (self.after, False)]
            else:
                out.append((turn["content"] + self.end + self.after, False))
        if add_generation_prompt:
            out.append((self.header.format(role="assistant"), False))
        return [(text, trained) for text, trained in out if text]

    def jinja(self) -> str:
        """The same rendering as a HF chat template (`{% generation %}` marks trained text)."""
        before, after_role = self.header.split("{role}")
        head = f"{before!r} + m['role'] + {after_role!r}"
        sys_turn = self.header.format(role="system") + self.system + self.end + self.after
        return (_CONTENT + "{{ " + repr(self.begin) + " }}"
                "{%- if messages[0]['role'] != 'system' -%}{{ " + repr(sys_turn) + " }}{%- endif -%}"
                "{%- for m in messages -%}{{ " + head + " }}"
                "{%- if m['role'] == 'assistant' -%}{% generation %}{{ content(m['content']) }}{{ "
                + repr(self.end) + " }}{% endgeneration %}{{ " + repr(self.after) + " }}"
                "{%- else -%}{{ content(m['content']) }}{{ " + repr(self.end + self.after) + " }}{%- endif -%}"
                "{%- endfor -%}{%- if add_generation_prompt -%}{{ "
                + repr(self.header.format(role="assistant")) + " }}{%- endif -%}")


FORMATS: dict[str, ChatFormat] = {
    # Qwen2 / LLaVA-OneVision (LLaVA-NeXT `qwen_1_5` conversation template)
    "chatml": ChatFormat("chatml", "", "<|im_start|>{role}\n", "<|im_end|>", "\n",
                         "You are a helpful assistant.", "<|im_start|>"),
    # Llama-3 / DriveMM (LLaVA-NeXT `llava_llama_3`, its system prompt)
    "llama3": ChatFormat("llama3", "<|begin_of_text|>", "<|start_header_id|>{role}<|end_header_id|>\n\n",
                         "<|eot_id|>", "",
                         "You are a helpful language and vision assistant. You are able to understand the visual "
                         "content that the user provides, and assist the user with a variety of tasks using "
                         "natural language.", "<|start_header_id|>"),
}


def detect(tokenizer, name: str = "auto") -> ChatFormat:
    """The named format, or with "auto" the one whose marker token the tokenizer has."""
    if name != "auto":
        if name not in FORMATS:
            raise UsageError(f"unknown chat format {name!r}; known: {', '.join(FORMATS)}")
        return FORMATS[name]
    vocab = tokenizer.get_vocab()
    for fmt in FORMATS.values():
        if fmt.marker in vocab:
            return fmt
    raise UsageError(f"no known chat format matches this tokenizer (looked for {', '.join(FORMATS)} markers); "
                     "pass --chat-format")
