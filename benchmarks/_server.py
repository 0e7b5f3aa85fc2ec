"""The benchmark server: the scripted TGI stand-in, in its own process.

Running the server in a separate process keeps its CPU work off the client's GIL, so what the client
measures is its own cost plus a constant server/loopback floor (measured separately as the bare ``httpx`` row).

Replies are instant. A prompt (or chat message) containing :data:`LONG_MARKER` gets a reply of
:data:`LONG_TOKENS` word tokens, for the streaming rows; everything else gets the short default reply.

Run: ``python benchmarks/_server.py`` prints ``READY <url>`` on stdout and serves until stdin closes.
"""

from __future__ import annotations

import sys

LONG_MARKER = "LONG-REPLY-PLEASE"
LONG_TOKENS = 1000
SHORT_REPLY = "Hello! How can I help?"


def main() -> int:
    from langchain_hf_chat.testing import Reply, ScriptedBackend, TGIServer
    from langchain_hf_chat.testing.backends.base import GenerationRequest

    long_reply = Reply(tuple(f" w{i}" for i in range(LONG_TOKENS)))

    def responder(request: GenerationRequest) -> Reply | None:
        return long_reply if LONG_MARKER in request.inputs else None

    backend = ScriptedBackend(model_id="bench/scripted", default_reply=SHORT_REPLY, responder=responder)
    server = TGIServer(backend=backend, max_concurrent_requests=512, max_stop_sequences=8).start()

    # The server records every request for tests; a benchmark sends tens of thousands, so forget them.
    import threading

    def forget() -> None:
        while server.running:
            server.state._requests.clear()
            threading.Event().wait(1.0)

    threading.Thread(target=forget, daemon=True).start()
    sys.stdout.write(f"READY {server.url}\n")
    sys.stdout.flush()
    sys.stdin.read()  # serve until the orchestrator closes our stdin
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
