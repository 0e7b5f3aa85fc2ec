"""Run the TGI-compatible test server from the command line.

Example::

    python -m langchain_hf_chat.testing --port 8080 --reply "Hello!" --reply "Second answer"

Queued ``--reply`` texts are answered in order, then ``--default-reply``. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from langchain_hf_chat.testing.backends.base import Backend
from langchain_hf_chat.testing.backends.scripted import ScriptedBackend
from langchain_hf_chat.testing.server import TGIServer


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (other backends add theirs here)."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_hf_chat.testing",
        description="A TGI-compatible HTTP server for offline tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: a free one)")
    parser.add_argument("--model-id", default="tgi-test/scripted", help="the served model id")
    parser.add_argument("--reply", action="append", default=[], metavar="TEXT", help="queue a reply (repeatable)")
    parser.add_argument("--default-reply", default="Hello! How can I help?")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--version", default="3.3", help="TGI version to imitate (3.3, 3.2, 2.0, ...)")
    parser.add_argument("--max-concurrent-requests", type=int, default=128)
    parser.add_argument("--no-chat-template", action="store_true", help="answer chat with template_error")
    return parser


def build_backend(args: argparse.Namespace) -> Backend:
    """The backend the options ask for. Extend here for other backends (e.g. ``--model PATH``)."""
    backend = ScriptedBackend(
        model_id=args.model_id,
        default_reply=args.default_reply,
        chat_template=False if args.no_chat_template else None,
    )
    for text in args.reply:
        backend.queue_reply(text)
    return backend


def main(argv: Sequence[str] | None = None) -> int:
    """Start the server and block until interrupted."""
    args = build_parser().parse_args(argv)
    server = TGIServer(
        backend=build_backend(args),
        api_key=args.api_key,
        version=args.version,
        host=args.host,
        port=args.port,
        max_concurrent_requests=args.max_concurrent_requests,
    )
    server.start()
    sys.stdout.write(f"TGI test server listening on {server.url} (model {args.model_id})\n")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
