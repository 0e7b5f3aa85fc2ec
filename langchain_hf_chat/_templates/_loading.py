"""Finding a model's chat template: explicit string, tokenizer, local path, Hugging Face cache."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from langchain_hf_chat._templates._sandbox import RenderLimits
from langchain_hf_chat._templates._template import ChatTemplate
from langchain_hf_chat.errors import TemplateError

# The named special tokens transformers passes to every template (`special_tokens_map`).
_SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


_DEFAULT_NAME = "default"


@dataclasses.dataclass
class _Found:
    templates: dict[str, str]  # name -> source; a single template is stored as "default"
    special_tokens: dict[str, str]
    origin: str


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _special_tokens_from_config(config: Mapping[str, Any]) -> dict[str, str]:
    tokens: dict[str, str] = {}
    extra = config.get("extra_special_tokens")
    names = list(_SPECIAL_TOKEN_KEYS)
    if isinstance(extra, Mapping):
        names += [str(key) for key in extra]
        config = {**extra, **config}
    for key in names:
        text = _token_text(config.get(key))
        if text is not None:
            tokens[key] = text
    return tokens


def _templates_from_value(value: Any) -> dict[str, str]:
    """`chat_template` as stored in configs: a string, or a list of {name, template}, or a dict."""
    if isinstance(value, str):
        return {_DEFAULT_NAME: value}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items() if isinstance(v, str)}
    if isinstance(value, list):
        named = {}
        for entry in value:
            if isinstance(entry, Mapping) and isinstance(entry.get("template"), str):
                named[str(entry.get("name", _DEFAULT_NAME))] = entry["template"]
        return named
    return {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path} does not hold a JSON object")
    return data


def _from_files(files: Mapping[str, Path], origin: str) -> _Found:
    """Templates and tokens from the files of a tokenizer folder (local or cached)."""
    templates: dict[str, str] = {}
    tokens: dict[str, str] = {}
    if "chat_template.json" in files:
        data = _read_json(files["chat_template.json"])
        templates.update(_templates_from_value(data.get("chat_template")))
    if "tokenizer_config.json" in files:
        config = _read_json(files["tokenizer_config.json"])
        templates.update(_templates_from_value(config.get("chat_template")))
        tokens = _special_tokens_from_config(config)
    if "chat_template.jinja" in files:  # transformers prefers the separate file
        templates[_DEFAULT_NAME] = files["chat_template.jinja"].read_text(encoding="utf-8")
    return _Found(templates, tokens, origin)


_CONFIG_FILES = ("chat_template.jinja", "tokenizer_config.json", "chat_template.json")


def _from_path(path: Path) -> _Found:
    if path.is_dir():
        files = {name: path / name for name in _CONFIG_FILES if (path / name).is_file()}
        found = _from_files(files, str(path))
        extra_dir = path / "additional_chat_templates"
        if extra_dir.is_dir():
            for file in sorted(extra_dir.glob("*.jinja")):
                found.templates.setdefault(file.stem, file.read_text(encoding="utf-8"))
        return found
    if not path.is_file():
        raise TemplateError(f"chat template path {path} does not exist")
    sibling_config = path.parent / "tokenizer_config.json"
    if path.suffix == ".json":
        is_config = path.name == "tokenizer_config.json"
        files = {"tokenizer_config.json" if is_config else "chat_template.json": path}
        if not is_config and sibling_config.is_file():
            files["tokenizer_config.json"] = sibling_config
        return _from_files(files, str(path))
    found = _Found({_DEFAULT_NAME: path.read_text(encoding="utf-8")}, {}, str(path))
    if sibling_config.is_file():
        found.special_tokens = _special_tokens_from_config(_read_json(sibling_config))
    return found


def _from_tokenizer(tokenizer: Any) -> _Found:
    templates = _templates_from_value(getattr(tokenizer, "chat_template", None))
    tokens: dict[str, str] = {}
    mapping = getattr(tokenizer, "special_tokens_map", None)
    if isinstance(mapping, Mapping):
        tokens = {k: v for k, v in mapping.items() if isinstance(v, str)}
    for key in ("bos_token", "eos_token"):
        text = _token_text(getattr(tokenizer, key, None))
        if text is not None:
            tokens.setdefault(key, text)
    return _Found(templates, tokens, type(tokenizer).__name__)


def _hub_cache_dir(cache_dir: str | os.PathLike[str] | None) -> str | None:
    if cache_dir is not None:
        return os.fspath(cache_dir)
    # Read the environment at call time (huggingface_hub reads it once, at import).
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE")
    if flag is not None:
        return flag.strip().upper() in ("1", "ON", "YES", "TRUE")
    return bool(constants.HF_HUB_OFFLINE)


def _from_hub(
    repo_id: str,
    *,
    token: str | None,
    revision: str | None,
    local_files_only: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
) -> _Found:
    from huggingface_hub import _CACHED_NO_EXIST, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    cache = _hub_cache_dir(cache_dir)
    offline = local_files_only if local_files_only is not None else _offline()
    files: dict[str, Path] = {}
    problems: list[str] = []
    for filename in _CONFIG_FILES:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache, revision=revision)
        if isinstance(cached, str):
            files[filename] = Path(cached)
            continue
        if cached is _CACHED_NO_EXIST or offline or not download:
            continue
        try:
            local = hf_hub_download(repo_id, filename, revision=revision, token=token, cache_dir=cache)
        except EntryNotFoundError:
            continue
        except LocalEntryNotFoundError as exc:
            problems.append(f"{filename}: {exc}")
            continue
        except Exception as exc:  # repository missing, gated, network down...
            raise TemplateError(
                f"cannot fetch {filename} for {repo_id!r} from the Hugging Face Hub: {type(exc).__name__}: {exc}"
            ) from None
        files[filename] = Path(local)
    found = _from_files(files, f"{repo_id} (Hugging Face cache{', offline' if offline else ''})")
    if not found.templates and problems:
        found.origin += "; " + "; ".join(problems)
    return found


def _looks_like_source(text: str) -> bool:
    return "{%" in text or "{{" in text or "{#" in text or "\n" in text


def load_chat_template(
    *,
    chat_template: str | None = None,
    tokenizer: Any | None = None,
    path: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    token: str | None = None,
    revision: str | None = None,
    local_files_only: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limits: RenderLimits | None = None,
) -> ChatTemplate:
    """Find a model's chat template and compile it.

    Sources, in order: ``chat_template`` (a template source; or the *name* of one of the model's
    named templates), a ``tokenizer`` object (its ``chat_template`` and special tokens), a local
    ``path`` (a tokenizer folder, a ``.jinja`` file or a JSON config) and the Hugging Face cache for
    ``repo_id`` (``chat_template.jinja``, ``tokenizer_config.json``, ``chat_template.json``; files
    are downloaded when missing unless ``HF_HUB_OFFLINE=1`` or ``local_files_only=True``). When a
    config lists several named templates, ``"default"`` is used unless another name is given.
    ``bos_token``/``eos_token`` (and the other special tokens) come from ``tokenizer_config.json``.

    Raises:
        TemplateError: naming the model or path and what was missing.

    Example:
        >>> import json, pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "tokenizer_config.json").write_text(json.dumps({
        ...     "eos_token": {"content": "</s>"},
        ...     "chat_template": "{% for m in messages %}{{ m.content + eos_token }}{% endfor %}",
        ... }))
        >>> load_chat_template(path=folder).render([{"role": "user", "content": "Hi"}])
        'Hi</s>'
    """
    name = repo_id or (os.fspath(path) if path is not None else None)
    tried: list[str] = []
    found: _Found | None = None

    def sources() -> Iterator[_Found]:
        if tokenizer is not None:
            yield _from_tokenizer(tokenizer)
        if path is not None:
            yield _from_path(Path(path))
        if repo_id is not None:
            explicit_source = chat_template is not None and _looks_like_source(chat_template)
            yield _from_hub(
                repo_id,
                token=token,
                revision=revision,
                local_files_only=local_files_only,
                cache_dir=cache_dir,
                download=not explicit_source,
            )

    if chat_template is not None and _looks_like_source(chat_template):
        tokens: dict[str, str] = {}
        try:  # special tokens are a bonus here: never fail because the model files are missing
            for candidate in sources():
                if candidate.special_tokens:
                    tokens = candidate.special_tokens
                    break
        except TemplateError:
            pass
        return ChatTemplate(chat_template, special_tokens=tokens, name=name, limits=limits)

    wanted = chat_template or _DEFAULT_NAME
    for candidate in sources():
        tried.append(candidate.origin)
        if candidate.templates:
            found = candidate
            break
    if found is None:
        where = ", ".join(tried) or "nothing (pass chat_template, tokenizer, path or repo_id)"
        raise TemplateError(
            f"no chat template found for {name or 'the model'}: looked in {where} for "
            "chat_template.jinja, tokenizer_config.json `chat_template` and chat_template.json"
        )
    source = found.templates.get(wanted)
    if source is None and chat_template is None and len(found.templates) == 1:
        source = next(iter(found.templates.values()))
    if source is None:
        raise TemplateError(
            f"{name or found.origin} has no chat template named {wanted!r}; available: {sorted(found.templates)}"
        )
    label = name or found.origin
    return ChatTemplate(source, special_tokens=found.special_tokens, name=label, limits=limits)
