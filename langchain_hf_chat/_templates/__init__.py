r"""Chat templates: find a model's template, compile it once, render it in a locked-down sandbox.

Rendering reproduces ``transformers``' ``apply_chat_template(..., tokenize=False)`` exactly (the
same Jinja options, globals, filters and input handling as ``chat_template_utils``) without
importing ``transformers``. Templates come from model repositories, so they are treated as
untrusted code: they run in Jinja's immutable sandbox, cannot reach Python internals, the file
system or the network, and their running time and output size are bounded.

Example:
    >>> zephyr = ChatTemplate.from_string(
    ...     "{% for m in messages %}<|{{ m['role'] }}|>\\n{{ m['content'] }}{{ eos_token }}\\n"
    ...     "{% endfor %}{% if add_generation_prompt %}<|assistant|>\\n{% endif %}",
    ...     eos_token="</s>",
    ... )
    >>> zephyr.render([{"role": "user", "content": "Hi"}])
    '<|user|>\\nHi</s>\\n<|assistant|>\\n'
"""

from __future__ import annotations

from langchain_hf_chat._templates._loading import load_chat_template
from langchain_hf_chat._templates._sandbox import RenderLimits
from langchain_hf_chat._templates._template import ChatTemplate

__all__ = ["ChatTemplate", "RenderLimits", "load_chat_template"]
