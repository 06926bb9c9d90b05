"""Time from Send to the first visible token and to both candidates complete, in Chromium,
for the token stream (server-sent events) and for polling (the page's fallback, the old
way: the turn fetched every second), in one run against one lab, with requests per
comparison for each.

    python -m benchmarks.stream_latency [--sends 20] [--max-new-tokens 64]
        [--database-url postgres://…/postgres --broker-url redis://…/0]

The script runs its own lab in a temporary folder, as production runs it: uvicorn on the
ASGI app and one Celery generation worker, on the embedded default (SQLite, folder broker:
the stream reads the rows at a short interval) or, with the two URLs, on a fresh
PostgreSQL database and a Redis database of its own (the worker publishes deltas on
pub/sub). The model is the lab's default (SmolLM2-135M-Instruct); one send warms the
worker up first. Sends alternate between the two modes so that drift hits both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.stack import free_port, fresh_postgres, wait_http

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "bench-pass-123"
CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")

# Timestamps in the page: the submit of the message form, the first non-empty response
# text, the scale's first button (both candidates done); and each length the streaming
# text of response A takes (how finely it grows).
INSTRUMENT = """() => {
  window.bench = {t0: null, first: null, ready: null, lengths: []};
  document.addEventListener('submit', () => { window.bench.t0 = performance.now(); }, true);
  new MutationObserver(() => {
    const b = window.bench;
    if (b.t0 === null) return;
    const now = performance.now();
    const texts = [...document.querySelectorAll('.candidate .stream, .candidate .md')];
    if (b.first === null && texts.some(e => e.textContent.trim().length)) b.first = now;
    const live = document.querySelector('.candidate .stream');
    if (live) b.lengths.push(live.textContent.length);
    if (b.ready === null && document.querySelector('.scale button')) b.ready = now;
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=20, help="measured sends per mode")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--database-url", default="", help="postgres://… (default: SQLite)")
    parser.add_argument("--broker-url", default="", help="redis://… (default: folder broker)")
    args = parser.parse_args(argv)
    if args.sends < 1 or args.max_new_tokens < 1:
        parser.error("--sends and --max-new-tokens must be at least 1")
    if bool(args.database_url) != bool(args.broker_url):
        parser.error("give both --database-url and --broker-url, or neither")

    var_dir = tempfile.mkdtemp(prefix="hhh-bench-stream-")
    env = {**os.environ, "LAB_VAR_DIR": var_dir, "DJANGO_SETTINGS_MODULE": "hhh.settings"}
    env.update({"LAB_LOG_LEVEL": "WARNING", "DJANGO_DEBUG": "1"})
    procs = []
    with contextlib.ExitStack() as stack:
        if args.database_url:
            env["DATABASE_URL"] = stack.enter_context(
                fresh_postgres(args.database_url, "hhh_bench_stream")
            )
            env["CELERY_BROKER_URL"] = _redis_db(args.broker_url, 13)
        os.environ.update(env)
        try:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, check=True
            )
            port = free_port()
            web = ["-m", "uvicorn", "hhh.asgi:application", "--port", str(port), "--no-access-log"]
            worker = ["-m", "celery", "-A", "hhh", "worker", "-Q", "generate,default", "-c", "1"]
            procs.append(_start(web + ["--log-level", "warning"], var_dir, "web"))
            procs.append(_start(worker + ["-l", "WARNING"], var_dir, "worker"))
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/accounts/login/")
            _prepare(args.max_new_tokens)
            results = _measure(url, args.sends)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
    _report(results, args)


def _measure(url: str, sends: int) -> dict[str, list[dict]]:
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    results: dict[str, list[dict]] = {"sse": [], "poll": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        pages = {}
        for mode in results:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            if mode == "poll":  # no EventSource: the page falls back to polling
                context.add_init_script("delete window.EventSource")
            page = context.new_page()
            page.set_default_timeout(300_000)
            page.goto(url + "/accounts/login/")
            page.fill("#id_username", "bench")
            page.fill("#id_password", PASSWORD)
            page.click("button:has-text('Log in')")
            page.wait_for_selector("text=Your tasks")
            pages[mode] = page
        _send(pages["sse"], url)  # warm-up: the worker loads the model
        for i in range(sends):
            for mode in ("sse", "poll") if i % 2 == 0 else ("poll", "sse"):
                results[mode].append(_send(pages[mode], url))
                print(f"{mode} send {len(results[mode])}: {results[mode][-1]}", flush=True)
        browser.close()
    return results


def _send(page, url: str) -> dict:
    page.goto(url + "/")
    page.click("button:has-text('Start a conversation')")
    page.wait_for_selector("textarea[name=text]")
    page.evaluate(INSTRUMENT)
    requests = []
    counting = True

    def on_request(request):
        if counting and "/static/" not in request.url:
            requests.append(request.url)

    page.on("request", on_request)
    page.fill("textarea[name=text]", "Give me one tip for sleeping better.")
    page.click("button:has-text('Send')")
    page.wait_for_function("window.bench.ready !== null")
    counting = False
    page.remove_listener("request", on_request)
    bench = page.evaluate("window.bench")
    return {
        "first_token_s": round((bench["first"] - bench["t0"]) / 1000, 3),
        "ready_s": round((bench["ready"] - bench["t0"]) / 1000, 3),
        "requests": len(requests),
        "growth_steps": len({n for n in bench["lengths"] if n > 0}),
    }


def _report(results: dict[str, list[dict]], args) -> None:
    backend = "PostgreSQL + Redis" if args.database_url else "SQLite + folder broker"
    summary = {"backend": backend, "sends": args.sends, "max_new_tokens": args.max_new_tokens}
    print(f"\n{backend}, {args.sends} sends per mode, max_new_tokens {args.max_new_tokens}")
    print(f"{'mode':6} {'first token (median, p90)':>27} {'ready (median)':>15} "
          f"{'requests/send':>14} {'growth steps':>13}")  # fmt: skip
    for mode, rows in results.items():
        first = [r["first_token_s"] for r in rows]
        figures = {
            "first_token_median_s": statistics.median(first),
            "first_token_p90_s": sorted(first)[max(0, int(0.9 * len(first)) - 1)],
            "ready_median_s": statistics.median(r["ready_s"] for r in rows),
            "requests_per_send": statistics.mean(r["requests"] for r in rows),
            "growth_steps_median": statistics.median(r["growth_steps"] for r in rows),
        }
        summary[mode] = figures
        f = figures
        print(
            f"{mode:6} {f['first_token_median_s']:>17.2f} s {f['first_token_p90_s']:>6.2f} s"
            f" {f['ready_median_s']:>13.2f} s {f['requests_per_send']:>14.1f}"
            f" {f['growth_steps_median']:>13.0f}"
        )
    sse, poll = summary["sse"], summary["poll"]
    summary["first_token_ratio_poll_over_sse"] = round(
        poll["first_token_median_s"] / sse["first_token_median_s"], 2
    )
    summary["requests_ratio_poll_over_sse"] = round(
        poll["requests_per_send"] / sse["requests_per_send"], 2
    )
    print(f"polling / SSE: first token x{summary['first_token_ratio_poll_over_sse']}, "
          f"requests x{summary['requests_ratio_poll_over_sse']}")  # fmt: skip
    print(json.dumps(summary))


def _prepare(max_new_tokens: int) -> None:
    """A crowdworker and a one-turn chat campaign on the default model."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from labeling.models import Campaign, ModelVersion

    get_user_model().objects.create_user("bench", password=PASSWORD)
    spec = settings.LAB_DEFAULT_MODEL_SPEC
    model = ModelVersion.objects.create(name=spec, kind=ModelVersion.Kind.ASSISTANT, spec=spec)
    Campaign.objects.create(
        name="Bench chat",
        slug="bench-chat",
        instructions="Pick the better one.",
        model_a=model,
        model_b=model,
        max_new_tokens=max_new_tokens,
        max_turns=1,
    )


def _start(args: list[str], var_dir: str, name: str) -> subprocess.Popen:
    log = open(Path(var_dir) / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=log, stderr=log)


def _redis_db(url: str, db: int) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url)._replace(path=f"/{db}").geturl()


if __name__ == "__main__":
    main()
