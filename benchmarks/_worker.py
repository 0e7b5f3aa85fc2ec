"""A measuring process: reads one JSON command per line on stdin, answers one JSON line on stdout.

The orchestrator (``run.py``) keeps one worker per virtual environment alive and sends them commands in
an interleaved order, so contenders living in different environments are measured in the same rounds.

Commands (``{"op": ..., ...}``):

* ``setup``: ``url``, ``names``: build the contenders (and warm them up);
* ``invoke``: ``name``, ``calls``: per-call wall and client CPU time (microseconds, batch means);
* ``stream``: ``name``, ``streams``: time to first chunk and per-chunk time (microseconds, medians);
* ``async``: ``name``, ``concurrency``, ``requests``: requests per second and client CPU per request;
* ``rss``: resident set size now (MiB);
* ``quit``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _contenders import Contender, build


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Worker:
    def __init__(self) -> None:
        self.contenders: dict[str, Contender] = {}

    def setup(self, url: str, names: list[str], warmup: int = 20) -> dict[str, Any]:
        errors: dict[str, str] = {}
        for name in names:
            try:
                contender = build(name, url)
                if contender.invoke is not None:
                    for _ in range(warmup):
                        contender.invoke()
                if contender.stream is not None:
                    for _ in contender.stream():
                        pass
                self.contenders[name] = contender
            except Exception as exc:  # a contender that cannot run is reported, not fatal
                errors[name] = f"{type(exc).__name__}: {exc}"
        return {"ok": sorted(self.contenders), "errors": errors}

    def invoke(self, name: str, calls: int) -> dict[str, Any]:
        call = self.contenders[name].invoke
        assert call is not None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            call()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"wall_us": wall / calls * 1e6, "cpu_us": cpu / calls * 1e6}

    def stream(self, name: str, streams: int) -> dict[str, Any]:
        make = self.contenders[name].stream
        assert make is not None
        firsts, per_chunk, cpus, counts = [], [], [], []
        for _ in range(streams):
            gc.collect()
            count = 0
            first = 0.0
            c0 = time.process_time()
            t0 = time.perf_counter()
            for _chunk in make():
                if count == 0:
                    first = time.perf_counter()
                count += 1
            end = time.perf_counter()
            cpus.append((time.process_time() - c0) / max(count, 1) * 1e6)
            firsts.append((first - t0) * 1e6)
            per_chunk.append((end - first) / max(count - 1, 1) * 1e6)
            counts.append(count)
        return {
            "ttfc_us": statistics.median(firsts),
            "chunk_us": statistics.median(per_chunk),
            "chunk_cpu_us": statistics.median(cpus),
            "chunks": statistics.median(counts),
        }

    def run_async(self, name: str, concurrency: int, requests: int) -> dict[str, Any]:
        contender = self.contenders[name]
        assert contender.ainvoke is not None

        async def main() -> tuple[float, float]:
            if contender.async_setup is not None:
                contender.async_setup()
            call = contender.ainvoke
            assert call is not None
            await asyncio.gather(*(call() for _ in range(concurrency)))  # warm the pool for this loop
            remaining = requests

            async def lane() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await call()

            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(lane() for _ in range(concurrency)))
            return time.perf_counter() - t0, time.process_time() - c0

        wall, cpu = asyncio.run(main())
        return {"rps": requests / wall, "cpu_us": cpu / requests * 1e6}


def main() -> int:
    worker = Worker()
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        try:
            if op == "quit":
                break
            if op == "setup":
                answer = worker.setup(**command)
            elif op == "invoke":
                answer = worker.invoke(**command)
            elif op == "stream":
                answer = worker.stream(**command)
            elif op == "async":
                answer = worker.run_async(**command)
            elif op == "rss":
                answer = {"rss_mib": rss_mib()}
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
