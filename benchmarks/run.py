"""``make bench``: this package side by side with raw ``InferenceClient``, ``langchain-huggingface`` and ``ChatOpenAI``.

Everything talks to one scripted TGI stand-in running in its own process (instant replies, so only client
cost is measured). Contenders live in long-running worker processes, one per virtual environment
(``langchain-huggingface`` pins an older ``huggingface_hub``, so it gets ``benchmarks/.venv-hf``), and are
measured in interleaved rounds in a shuffled order; ratios are computed per round (paired), then summarised
by their median and interquartile range.

Writes ``benchmarks/results.md``, ``benchmarks/results.json`` and ``benchmarks/results.png``.

Options: ``--quick`` (fewer rounds), ``--save-baseline`` (also write ``baseline.json``, shown as the
"before" column of later runs), ``--no-hf`` (skip ``langchain-huggingface``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAIN_PY = Path(sys.executable)
HF_VENV = HERE / ".venv-hf"
HF_PY = HF_VENV / "bin" / "python"

MAIN_INVOKE = [
    "httpx",
    "urllib3",
    "raw_tg",
    "raw_cc",
    "ours_tgi",
    "ours_endpoint",
    "ours_chat",
    "ours_text",
    "openai_chat",
]
HF_INVOKE = ["lchf_llm", "lchf_chat", "lchf_raw_tg", "lchf_raw_cc"]
NO_STREAM = {"httpx", "urllib3"}

#: Which raw call each contender is compared with (same route family, same venv's server).
BASELINE = {
    "ours_tgi": "raw_tg",
    "ours_endpoint": "raw_tg",
    "ours_text": "raw_tg",
    "lchf_llm": "raw_tg",
    "lchf_raw_tg": "raw_tg",
    "ours_chat": "raw_cc",
    "lchf_chat": "raw_cc",
    "openai_chat": "raw_cc",
    "lchf_raw_cc": "raw_cc",
    "httpx": "raw_tg",
    "urllib3": "raw_tg",
}
LABEL = {
    "httpx": "bare httpx POST /generate (server floor; hub's raw client is on httpx2)",
    "urllib3": "bare urllib3 POST /generate (our sync layer's floor)",
    "raw_tg": "raw InferenceClient.text_generation",
    "raw_cc": "raw InferenceClient.chat_completion",
    "ours_tgi": "ours HuggingFaceTextGenInference",
    "ours_endpoint": "ours HuggingFaceEndpoint",
    "ours_chat": "ours ChatHuggingFace (chat mode)",
    "ours_text": "ours ChatHuggingFace (text mode)",
    "openai_chat": "langchain-openai ChatOpenAI",
    "lchf_llm": "langchain-huggingface HuggingFaceEndpoint",
    "lchf_chat": "langchain-huggingface ChatHuggingFace",
    "lchf_raw_tg": "raw text_generation (hub in .venv-hf)",
    "lchf_raw_cc": "raw chat_completion (hub in .venv-hf)",
}


# -- helpers ----------------------------------------------------------------------------------------------------


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def summary(values: Sequence[float]) -> dict[str, float]:
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return {"median": float("nan"), "q1": float("nan"), "q3": float("nan"), "n": 0}
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "q1": q[0], "q3": q[2], "n": len(values)}


def ensure_hf_venv() -> bool:
    """Create ``benchmarks/.venv-hf`` with ``langchain-huggingface`` (its pins conflict with ours)."""
    if HF_PY.exists():
        return True
    log("creating benchmarks/.venv-hf for langchain-huggingface (one time)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(HF_VENV)], check=True)
        subprocess.run(
            [str(HF_PY), "-m", "pip", "install", "--quiet", "-r", str(HERE / "requirements-hf.txt")],
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        log(f"could not set up .venv-hf ({exc}); langchain-huggingface rows are skipped")
        return False
    return True


def version_in(python: Path, package: str) -> str:
    code = f"from importlib import metadata; print(metadata.version({package!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "n/a"


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [str(MAIN_PY), str(HERE / "_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError("the benchmark server did not start")
        self.url = line[1]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=20)


class WorkerProcess:
    def __init__(self, python: Path) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(HERE / "_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(HERE),
        )

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker died during {command}")
        return dict(json.loads(line))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, BrokenPipeError):
            self.ask(op="quit")
        self.proc.wait(timeout=20)


def oneshot(python: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(python), str(HERE / "_oneshot.py"), *args], capture_output=True, text=True, check=False, cwd=str(HERE)
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- rows ------------------------------------------------------------------------------------------------------


def interleaved(
    workers: dict[str, WorkerProcess], rounds: int, op: str, fields: Sequence[str], **params: Any
) -> dict[str, dict[str, list[float]]]:
    """Run ``op`` for every contender, ``rounds`` times, in a new random order each round."""
    samples: dict[str, dict[str, list[float]]] = {name: {f: [] for f in fields} for name in workers}
    names = list(workers)
    rng = random.Random(8)
    for index in range(rounds):
        rng.shuffle(names)
        for name in names:
            answer = workers[name].ask(op=op, name=name, **params)
            for f in fields:
                samples[name][f].append(float(answer.get(f, float("nan"))))
        log(f"{op}: round {index + 1}/{rounds}")
    return samples


def paired_ratios(samples: dict[str, dict[str, list[float]]], field: str, invert: bool = False) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    for name, data in samples.items():
        base = BASELINE.get(name)
        if base is None or base not in samples:
            continue
        pairs = zip(data[field], samples[base][field], strict=False)
        values = [(b / a if invert else a / b) for a, b in pairs if a == a and b == b and a and b]
        ratios[name] = summary(values)
    return ratios


BASELINE_IMPORT = (
    "from langchain_core.language_models import BaseChatModel, BaseLLM\nfrom huggingface_hub import InferenceClient"
)
OURS_IMPORT = "from langchain_hf_chat import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceTextGenInference"


def run_imports(rounds: int, have_hf: bool) -> dict[str, Any]:
    statements: list[tuple[str, Path, str]] = [
        (
            "literal baseline: import langchain_core.language_models, huggingface_hub (both lazy)",
            MAIN_PY,
            "import langchain_core.language_models, huggingface_hub",
        ),
        ("baseline: BaseChatModel, BaseLLM + InferenceClient", MAIN_PY, BASELINE_IMPORT),
        ("import langchain_hf_chat (lazy exports)", MAIN_PY, "import langchain_hf_chat"),
        ("ours: ChatHuggingFace + LLM classes", MAIN_PY, OURS_IMPORT),
        ("baseline + ours", MAIN_PY, BASELINE_IMPORT + "\n" + OURS_IMPORT),
        ("langchain-openai: ChatOpenAI", MAIN_PY, "from langchain_openai import ChatOpenAI"),
    ]
    if have_hf:
        statements.append(
            (
                "langchain-huggingface: ChatHuggingFace + HuggingFaceEndpoint",
                HF_PY,
                "from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint",
            )
        )
    samples: dict[str, list[float]] = {label: [] for label, _, _ in statements}
    info: dict[str, Any] = {}
    for index in range(rounds):
        order = list(statements)
        random.Random(index).shuffle(order)
        for label, python, statement in order:
            answer = oneshot(python, "import", statement)
            if "error" in answer:
                info[label] = answer
                continue
            samples[label].append(answer["seconds"] * 1000)
            info[label] = {"heavy": answer["heavy"], "rss_mib": answer["rss_mib"], "modules": answer["modules"]}
        log(f"import: round {index + 1}/{rounds}")
    result = {label: {**summary(values), **info.get(label, {})} for label, values in samples.items()}
    # Paired per round: (baseline + ours) minus baseline, each in a fresh interpreter.
    base = samples["baseline: BaseChatModel, BaseLLM + InferenceClient"]
    ours = samples["baseline + ours"]
    result["_added_ms"] = summary([a - b for a, b in zip(ours, base, strict=False)])
    totals, top = [], []
    for _ in range(rounds):
        total, top = importtime_added()
        totals.append(total)
    result["_importtime_added_ms"] = summary(totals)
    result["_importtime"] = top
    return result


def importtime_added(limit: int = 12) -> tuple[float, list[tuple[str, float]]]:
    """What ``from langchain_hf_chat import ...`` adds once the baseline is loaded, from ``-X importtime``.

    Returns the total (ms, the sum of the top-level entries printed after the baseline) and the slowest
    first-level modules.
    """
    code = BASELINE_IMPORT + "\nimport sys\nsys.stderr.write('MARK\\n')\n" + OURS_IMPORT
    out = subprocess.run([str(MAIN_PY), "-X", "importtime", "-c", code], capture_output=True, text=True, check=False)
    after = out.stderr.split("MARK\n", 1)[-1].splitlines()
    parsed = []
    for line in after:
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        parsed.append((name.rstrip(), int(cumulative) / 1000))
    total = sum(ms for name, ms in parsed if name.startswith(" ") and not name.startswith("  "))
    shallow = [(name.strip(), ms) for name, ms in parsed if len(name) - len(name.lstrip()) <= 3]
    shallow.sort(key=lambda row: -row[1])
    return total, shallow[:limit]


# -- report ----------------------------------------------------------------------------------------------------


def fmt(stat: dict[str, float], digits: int = 0) -> str:
    if not stat or stat.get("n", 0) == 0:
        return "n/a"
    return f"{stat['median']:.{digits}f} ({stat['q1']:.{digits}f}–{stat['q3']:.{digits}f})"


def write_report(results: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    lines: list[str] = []
    env = results["environment"]
    lines += [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`benchmarks/run.py`) on {env['date']}. Medians with the interquartile range "
        "(q1–q3) in parentheses. Ratios are paired per round (contender / baseline measured in the same round) and "
        "then summarised; the baseline of an LLM class or text mode is raw `InferenceClient.text_generation`, "
        "of a chat model raw `InferenceClient.chat_completion`.",
        "",
        "The server is the scripted TGI stand-in (`langchain_hf_chat.testing`) in its own process; it replies "
        "instantly, so a round trip is its fixed cost (the *bare httpx* / *bare urllib3* rows) plus the client's own "
        "cost. Client CPU "
        "is the client process's CPU time, which the server's work does not inflate.",
        "",
        "## Machine and versions",
        "",
    ]
    for key, value in env.items():
        lines.append(f"- {key}: {value}")
    lines.append("")

    def before(section: str, name: str) -> str:
        if not baseline:
            return ""
        try:
            return f"{baseline[section][name]['median']:.2f}"
        except KeyError:
            return "n/a"

    has_before = baseline is not None
    # Invoke.
    inv, inv_r, inv_cr = results["invoke"], results["invoke_ratios"], results["invoke_cpu_ratios"]
    lines += [
        "## invoke, short reply (µs per call)",
        "",
        "| contender | wall µs | client CPU µs | wall ratio vs raw | CPU ratio vs raw |"
        + (" wall ratio before |" if has_before else ""),
        "|---|---|---|---|---|" + ("---|" if has_before else ""),
    ]
    for name in inv:
        ratio = inv_r.get(name)
        lines.append(
            f"| {LABEL[name]} | {fmt(summary(inv[name]['wall_us']))} | {fmt(summary(inv[name]['cpu_us']))} | "
            f"{fmt(ratio, 2) if ratio else '—'} | {fmt(inv_cr.get(name, {}), 2) if name in inv_cr else '—'} |"
            + (f" {before('invoke_ratios', name) if name in inv_r else '—'} |" if has_before else "")
        )
    lines.append("")
    # Stream.
    st, st_r, tt_r = results["stream"], results["stream_ratios"], results["ttfc_ratios"]
    lines += [
        "## stream, 1,000-token reply",
        "",
        "| contender | first chunk µs | per chunk µs | client CPU per chunk µs | per-chunk ratio vs raw "
        "| first-chunk ratio |" + (" per-chunk ratio before |" if has_before else ""),
        "|---|---|---|---|---|---|" + ("---|" if has_before else ""),
    ]
    for name in st:
        lines.append(
            f"| {LABEL[name]} | {fmt(summary(st[name]['ttfc_us']))} | {fmt(summary(st[name]['chunk_us']), 1)} | "
            f"{fmt(summary(st[name]['chunk_cpu_us']), 1)} | {fmt(st_r[name], 2) if name in st_r else '—'} | "
            f"{fmt(tt_r[name], 2) if name in tt_r else '—'} |"
            + (f" {before('stream_ratios', name) if name in st_r else '—'} |" if has_before else "")
        )
    lines.append("")
    # Async.
    asy, asy_r = results["async"], results["async_ratios"]
    lines += [
        f"## async throughput, {results['params']['concurrency']} concurrent `ainvoke`",
        "",
        "| contender | requests/s | client CPU µs per request | throughput ratio vs raw |"
        + (" ratio before |" if has_before else ""),
        "|---|---|---|---|" + ("---|" if has_before else ""),
    ]
    for name in asy:
        lines.append(
            f"| {LABEL[name]} | {fmt(summary(asy[name]['rps']))} | {fmt(summary(asy[name]['cpu_us']))} | "
            f"{fmt(asy_r[name], 2) if name in asy_r else '—'} |"
            + (f" {before('async_ratios', name) if name in asy_r else '—'} |" if has_before else "")
        )
    lines.append("")
    # Import.
    imp = results["import"]
    lines += [
        "## import (ms, fresh interpreter)",
        "",
        "| statement | ms | RSS MiB | heavy packages loaded |",
        "|---|---|---|---|",
    ]
    for label, stat in imp.items():
        if label.startswith("_"):
            continue
        heavy = ", ".join(stat.get("heavy", [])) or "none"
        lines.append(f"| {label} | {fmt(stat)} | {stat.get('rss_mib', float('nan')):.0f} | {heavy} |")
    lines += [
        "",
        "Added by this package over `BaseChatModel, BaseLLM` + `InferenceClient` (the literal baseline row imports "
        "two lazy packages and loads almost nothing):",
        "",
        f"- `python -X importtime`, same interpreter, after the baseline: **{fmt(imp['_importtime_added_ms'], 1)} ms**",
        f"- wall clock, fresh interpreters, paired per round: {fmt(imp['_added_ms'], 1)} ms (noisier)",
        "",
        "Slowest modules it adds (cumulative ms, one run):",
        "",
    ]
    for name, ms in imp["_importtime"]:
        lines.append(f"- `{name}`: {ms:.1f}")
    lines.append("")
    # Construction.
    con = results["construct"]
    lines += ["## construction (µs per instance, no I/O)", "", "| class | µs |", "|---|---|"]
    for label, stat in con.items():
        lines.append(f"| {label} | {fmt(stat, 1)} |")
    lines.append("")
    # Render.
    ren = results["render"]
    lines += [
        "## `_to_chat_prompt`, 10-message conversation, vs `transformers` `apply_chat_template` (µs)",
        "",
        "*First render* uses a distinct conversation per call; *repeated* renders the same conversation (templates "
        "compiled to Python have no render memo, as hashing the inputs costs more than rendering; transformers has "
        "only its compiled-template cache). Ours includes converting LangChain messages to template dicts; "
        "transformers is handed dicts.",
        "",
        "| template | ours first | transformers first | speed-up | ours repeated | transformers repeated | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for file, stat in ren.items():
        if "error" in stat:
            lines.append(f"| {file} | {stat['error']} | | | | | |")
            continue
        first = stat["hf_first"]["median"] / stat["ours_first"]["median"]
        repeat = stat["hf_repeat"]["median"] / stat["ours_repeat"]["median"]
        lines.append(
            f"| {file} | {fmt(stat['ours_first'], 1)} | {fmt(stat['hf_first'], 1)} | {first:.1f}x | "
            f"{fmt(stat['ours_repeat'], 1)} | {fmt(stat['hf_repeat'], 1)} | {repeat:.1f}x |"
        )
    lines.append("")
    # Memory.
    mem = results["memory"]
    lines += [
        "## memory (RSS MiB, fresh process)",
        "",
        "| contender | after import + construct | after 1,000 calls |",
        "|---|---|---|",
    ]
    for name, stat in mem.items():
        if "error" in stat:
            lines.append(f"| {LABEL[name]} | {stat['error']} | |")
            continue
        lines.append(f"| {LABEL[name]} | {stat['after_import_mib']:.1f} | {stat['after_calls_mib']:.1f} |")
    lines.append("")
    lines += results.get("notes", [])
    return "\n".join(lines) + "\n"


def write_chart(results: dict[str, Any], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; no chart"
    panels = [
        ("invoke: wall time vs raw (lower is better)", results["invoke_ratios"], 1.25),
        ("stream: per-chunk time vs raw", results["stream_ratios"], 1.25),
        ("async: throughput vs raw (higher is better)", results["async_ratios"], 0.9),
    ]
    fig, grid = plt.subplots(2, 2, figsize=(15, 9))
    axes = list(grid.flat)
    for ax, (title, ratios, target) in zip(axes, panels, strict=False):
        names = [n for n in ratios if n not in ("httpx", "urllib3") and not n.startswith("lchf_raw")]
        values = [ratios[n]["median"] for n in names]
        errors = [
            [ratios[n]["median"] - ratios[n]["q1"] for n in names],
            [ratios[n]["q3"] - ratios[n]["median"] for n in names],
        ]
        colors = ["tab:green" if n.startswith("ours") else "tab:gray" for n in names]
        ax.barh([LABEL[n] for n in names], values, xerr=errors, color=colors)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.axvline(target, color="tab:red", linestyle="--", linewidth=0.8, label=f"target {target}x")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    imp = {k: v for k, v in results["import"].items() if not k.startswith("_") and v.get("n")}
    axes[3].barh([label.split(":")[0] for label in imp], [v["median"] for v in imp.values()], color="tab:blue")
    axes[3].set_title("import time (ms)", fontsize=10)
    axes[3].tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"chart: {path.name}"


# -- main ------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--save-baseline", action="store_true", help="also write baseline.json (the 'before')")
    parser.add_argument("--no-hf", action="store_true", help="skip langchain-huggingface")
    parser.add_argument("--report-only", action="store_true", help="rewrite results.md/png from results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        finish(json.loads((HERE / "results.json").read_text()), save_baseline=False, started=time.perf_counter())
        return 0
    q = args.quick
    # Installed packages come with bytecode (pip compiles at install); an editable checkout does not, and with
    # PYTHONDONTWRITEBYTECODE set every import would compile our sources again. Compile them once, like pip.
    subprocess.run([str(MAIN_PY), "-m", "compileall", "-q", str(ROOT / "langchain_hf_chat")], check=True)
    rounds = {"invoke": 3 if q else 15, "stream": 2 if q else 7, "async": 2 if q else 5, "import": 2 if q else 7}
    params = {"calls": 40, "streams": 2, "concurrency": 64, "requests": 512}
    started = time.perf_counter()

    have_hf = not args.no_hf and ensure_hf_venv()
    server = Server()
    log(f"server at {server.url}")
    main_worker = WorkerProcess(MAIN_PY)
    hf_worker = WorkerProcess(HF_PY) if have_hf else None
    notes: list[str] = []
    try:
        names = list(MAIN_INVOKE)
        setup = main_worker.ask(op="setup", url=server.url, names=names)
        workers = dict.fromkeys(setup["ok"], main_worker)
        failures = dict(setup["errors"])
        if hf_worker is not None:
            setup = hf_worker.ask(op="setup", url=server.url, names=HF_INVOKE)
            workers.update(dict.fromkeys(setup["ok"], hf_worker))
            failures.update(setup["errors"])
        for name, error in failures.items():
            notes.append(f"- {LABEL[name]} could not run: {error}")
            log(f"{name} skipped: {error}")
        ordered = {n: workers[n] for n in [*MAIN_INVOKE, *HF_INVOKE] if n in workers}

        invoke = interleaved(ordered, rounds["invoke"], "invoke", ["wall_us", "cpu_us"], calls=params["calls"])
        streamers = {n: w for n, w in ordered.items() if n not in NO_STREAM}
        stream = interleaved(
            streamers,
            rounds["stream"],
            "stream",
            ["ttfc_us", "chunk_us", "chunk_cpu_us", "chunks"],
            streams=params["streams"],
        )
        async_rows = interleaved(
            streamers,
            rounds["async"],
            "async",
            ["rps", "cpu_us"],
            concurrency=params["concurrency"],
            requests=params["requests"],
        )
        main_rss = main_worker.ask(op="rss")
    finally:
        main_worker.close()
        if hf_worker is not None:
            hf_worker.close()

    memory: dict[str, Any] = {}
    for name in ("raw_tg", "raw_cc", "ours_tgi", "ours_chat", "ours_text", "openai_chat", "lchf_llm", "lchf_chat"):
        if name.startswith("lchf") and not have_hf:
            continue
        memory[name] = oneshot(HF_PY if name.startswith("lchf") else MAIN_PY, "memory", server.url, name)
    log("memory done")
    server.close()

    imports = run_imports(rounds["import"], have_hf)
    construct = oneshot(MAIN_PY, "construct", "5" if q else "21")
    if have_hf:
        construct.update(
            {k: v for k, v in oneshot(HF_PY, "construct", "5" if q else "21").items() if "langchain-huggingface" in k}
        )
    log("construction done")
    render = oneshot(MAIN_PY, "render", "5" if q else "25")
    log("render done")

    environment = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "langchain-hf-chat": metadata.version("langchain-hf-chat"),
        "langchain-core": metadata.version("langchain-core"),
        "huggingface_hub (ours, raw)": metadata.version("huggingface_hub"),
        "httpx / urllib3": f"{metadata.version('httpx')} / {metadata.version('urllib3')}",
        "transformers": metadata.version("transformers"),
        "langchain-openai / openai": f"{version_in(MAIN_PY, 'langchain-openai')} / {version_in(MAIN_PY, 'openai')}",
    }
    if have_hf:
        environment["langchain-huggingface (.venv-hf)"] = version_in(HF_PY, "langchain-huggingface")
        environment["huggingface_hub (.venv-hf)"] = version_in(HF_PY, "huggingface_hub")
    environment["parameters"] = (
        f"invoke {rounds['invoke']} rounds x {params['calls']} calls; stream {rounds['stream']} rounds x "
        f"{params['streams']} streams of 1,000 tokens; async {rounds['async']} rounds x {params['requests']} requests "
        f"at concurrency {params['concurrency']}; import {rounds['import']} fresh interpreters per statement"
    )
    results: dict[str, Any] = {
        "environment": environment,
        "params": params,
        "invoke": invoke,
        "invoke_ratios": paired_ratios(invoke, "wall_us"),
        "invoke_cpu_ratios": paired_ratios(invoke, "cpu_us"),
        "stream": stream,
        "stream_ratios": paired_ratios(stream, "chunk_us"),
        "ttfc_ratios": paired_ratios(stream, "ttfc_us"),
        "async": async_rows,
        "async_ratios": paired_ratios(async_rows, "rps"),
        "import": imports,
        "construct": construct,
        "render": render,
        "memory": memory,
        "worker_rss_mib": main_rss,
        "notes": notes,
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    finish(results, save_baseline=args.save_baseline, started=started)
    return 0


def finish(results: dict[str, Any], *, save_baseline: bool, started: float) -> None:
    """Write results.md and results.png (and baseline.json when asked)."""
    baseline_path = HERE / "baseline.json"
    baseline = json.loads(baseline_path.read_text()) if baseline_path.exists() and not save_baseline else None
    if save_baseline:
        baseline_path.write_text(json.dumps(results, indent=1))
    report = write_report(results, baseline)
    chart = write_chart(results, HERE / "results.png")
    results.setdefault("run_seconds", round(time.perf_counter() - started))
    report += f"\n![benchmark chart](results.png)\n\n_{chart}; total run time {results['run_seconds']} s._\n"
    extra = HERE / "notes.md"
    if extra.exists():
        report += "\n" + extra.read_text()
    (HERE / "results.md").write_text(report)
    log(f"wrote results.md in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
