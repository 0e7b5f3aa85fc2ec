"""``python -m langchain_hf_chat.testing --model ...``: which backend the options build (nothing is loaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from langchain_hf_chat.testing.__main__ import build_backend, build_parser, main
from langchain_hf_chat.testing.backends.scripted import ScriptedBackend
from langchain_hf_chat.testing.model_store import MODEL_ID


@pytest.fixture
def local_extra() -> None:
    missing = [name for name in ("torch", "transformers", "llguidance") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the `local` extra is not installed ({', '.join(missing)})")


def backend_for(*argv: str) -> Any:
    return build_backend(build_parser().parse_args(list(argv)))


def test_without_model_the_backend_is_scripted_with_the_default_id() -> None:
    backend = backend_for()
    assert isinstance(backend, ScriptedBackend)
    assert backend.model_id == "tgi-test/scripted"


@pytest.mark.usefixtures("local_extra")
def test_model_smollm2_serves_the_model_store_without_loading_it() -> None:
    from langchain_hf_chat.testing.backends.model import ModelBackend

    backend = backend_for("--model", "smollm2")

    assert isinstance(backend, ModelBackend)
    assert (backend.model_path, backend.model_id, backend.loaded) == (None, MODEL_ID, False)


@pytest.mark.usefixtures("local_extra")
def test_model_folder_is_served_under_its_folder_name(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()

    backend = backend_for("--model", str(folder), "--num-threads", "2", "--quantization", "int8")

    assert (backend.model_path, backend.model_id, backend.loaded) == (folder, "my-model", False)
    assert (backend.num_threads, backend.quantization) == (2, "int8")


@pytest.mark.usefixtures("local_extra")
def test_gguf_file_is_served_under_its_stem_or_the_given_id(tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.Q4_1.gguf"
    gguf.write_bytes(b"GGUF")

    assert backend_for("--model", str(gguf)).model_id == "tiny.Q4_1"
    assert backend_for("--model", str(gguf), "--model-id", "org/tiny").model_id == "org/tiny"


@pytest.mark.usefixtures("local_extra")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "no/such/folder"], "not a model folder or a .gguf file"),
        (["--model", "smollm2", "--reply", "hi"], "apply to scripted replies"),
        (["--model", "smollm2", "--no-chat-template"], "apply to scripted replies"),
    ],
)
def test_unusable_model_options_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backend_for(*argv)


def test_model_without_the_local_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )
    with pytest.raises(ModuleNotFoundError, match=r"`local` extra \(torch not installed\)"):
        backend_for("--model", "smollm2")


@pytest.mark.usefixtures("local_extra")
def test_main_reports_a_bad_model_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", "smollm2", "--reply", "hi"])
    assert exit_info.value.code == 2
    assert "apply to scripted replies" in capsys.readouterr().err
