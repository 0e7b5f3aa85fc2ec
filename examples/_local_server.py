"""Shared by the examples: use ``--url`` if given, else start a scripted TGI-compatible server on 127.0.0.1.

The scripted server answers with the replies the example queues, in order, exactly as a real TGI server would
send them (tool calls as TGI's tool grammar writes them, JSON as its grammar forces it), so every example runs
offline in about a second. Point ``--url`` at a real TGI server or Inference Endpoint (or at
``python -m langchain_hf_chat.testing --model smollm2``) to run it against a model.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator

from langchain_hf_chat.testing import ScriptedBackend, TGIServer

#: The model id the scripted server reports.
SCRIPTED_MODEL_ID = "HuggingFaceH4/zephyr-7b-beta"


def parser(description: str | None) -> argparse.ArgumentParser:
    """The examples' command line: ``--url``."""
    arguments = argparse.ArgumentParser(description=description)
    arguments.add_argument(
        "--url", help="a TGI server or Inference Endpoint (default: a local scripted server with queued replies)"
    )
    return arguments


@contextlib.contextmanager
def server_url(url: str | None, queue_replies: Callable[[ScriptedBackend], None]) -> Iterator[str]:
    """``url``, or the URL of a scripted local server with ``queue_replies``' replies queued (stopped on exit)."""
    if url:
        yield url
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the scripted run needs nothing from the Hugging Face Hub
    backend = ScriptedBackend(model_id=SCRIPTED_MODEL_ID)
    queue_replies(backend)
    with TGIServer(backend=backend) as server:
        print(f"(scripted TGI-compatible server at {server.url}; pass --url to use a real one)")
        yield server.url
