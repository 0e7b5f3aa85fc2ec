#!/usr/bin/env bash
# Build the sdist and wheel, install the wheel into a clean venv, and import the package from it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
.venv/bin/python -m build --sdist --wheel --outdir "$out/dist" . > "$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
python3 -m venv "$out/venv"
# The wheel's light core dependencies come from the registry; nothing heavy is pulled in.
"$out/venv/bin/pip" install --quiet -c constraints.txt "$out"/dist/*.whl
"$out/venv/bin/python" - <<'PY'
import sys
import langchain_hf_chat
from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceHub, HuggingFaceTextGenInference
assert "torch" not in sys.modules and "transformers" not in sys.modules
llm = HuggingFaceTextGenInference(inference_server_url="http://127.0.0.1:1")
print("wheel OK:", langchain_hf_chat.__version__, ChatHuggingFace(llm=llm, model_id="a/b").model_id)
PY
ls "$out/dist"
