"""The load harness's JSON: what the crowd sent against what the database holds, the
latencies its browsers saw, and each fault's recovery, with the goals met or not."""

from __future__ import annotations

from collections import Counter

from benchmarks.load_faults import RECOVERY_LIMIT_S

GOAL_PAGE_P95_MS = 200.0
GOAL_RECOVERY_S = 30.0
LOGIN = ("/prolific/", "/accounts/login/")  # entry: a password or link check, apart


def summarize(args, crowd, faults, since, capacity, alone) -> dict:
    from labeling.models import Judgment, Turn

    logs = crowd.worker_logs
    users = {log.user_id for log in logs if log.user_id is not None}
    accepted = [pair for log in logs for pair in log.judged]
    rows = Counter(
        Judgment.objects.filter(worker_id__in=users, created_at__gte=since).values_list(
            "worker_id", "item_id"
        )
    )
    requests = crowd.requests
    windows = [
        (f.at - 1.0, f.at + (f.recovery_s if f.recovery_s is not None else RECOVERY_LIMIT_S) + 5.0)
        for f in faults
    ]
    refused = [r for r in requests if 400 <= r.status < 500]
    outside = [r for r in refused if not any(lo <= r.at <= hi for lo, hi in windows)]
    pages = _pages(requests)
    alone_pages = _quantiles(_pages(alone.requests), scale=1000)
    alone_ready = _quantiles([s.ready_s for s in alone.streams if s.ready_s])
    sends = [r for r in requests if r.endpoint.endswith("/messages/") and 200 <= r.status < 400]
    start = min((r.at for r in requests), default=0.0)
    summary = {
        "workers": args.workers,
        "tasks": args.tasks,
        "model": args.model,
        "think_s": args.think,
        "web_workers": args.web_workers,
        "seconds": round(crowd.seconds, 1),
        "tasks_done": sum(log.tasks for log in logs),
        "ended": dict(sorted(Counter(log.ended or "unknown" for log in logs).items())),
        "submitted": sum(1 for r in requests if r.endpoint.endswith("/compare/")),
        "accepted": len(accepted),
        "stored": sum(rows.values()),
        "lost": sum(1 for pair in accepted if pair not in rows),
        "duplicated": sum(n - 1 for n in rows.values() if n > 1),
        "turns": {
            "sent": len(sends),
            "stored": Turn.objects.filter(
                conversation__worker_id__in=users, created_at__gte=since
            ).count(),
        },
        "refused": len(refused),
        "refused_outside_faults": len(outside),
        "refused_where": dict(Counter(f"{r.status} {r.endpoint}" for r in refused)),
        "http_5xx": sum(1 for r in requests if r.status >= 500),
        "no_answer": sum(1 for r in requests if r.status == 0),
        "errors": sorted({e for log in logs for e in log.http_errors})[:10],
        "requests": len(requests),
        "page_latency_ms": _quantiles(pages, scale=1000),
        "latency_ms": {
            endpoint: _quantiles([r.seconds for r in requests if r.endpoint == endpoint], 1000)
            for endpoint in sorted({r.endpoint for r in requests})
        },
        "send_to_first_token_s": _quantiles([s.first_s for s in crowd.streams if s.first_s]),
        "send_to_ready_s": _quantiles([s.ready_s for s in crowd.streams if s.ready_s]),
        "streams_never_ready": sum(1 for s in crowd.streams if s.ready_s is None),
        "faults": [
            {
                "fault": f.fault,
                "at_s": round(f.at - start, 1),
                "turns_in_flight": f.in_flight,
                "recovery_s": f.recovery_s,
            }
            for f in faults
        ],
        "recovery_s": {f.fault: f.recovery_s for f in faults},
        "generation_capacity": capacity,
        "cpu_cores_used": crowd.cpu_share,
        "baseline_one_worker_alone": {
            "page_latency_ms": alone_pages,
            "send_to_ready_s": alone_ready,
        },
    }
    summary["ratios"] = {
        # how much slower the pages are with the crowd than for one worker alone
        "page_p95_crowd_vs_alone": _ratio(
            summary["page_latency_ms"].get("p95"), alone_pages.get("p95")
        ),
        # turns a second one generation worker serves, against one turn at a time
        "capacity_vs_one_turn_at_a_time": _ratio(
            (capacity or {}).get("turns_per_s"),
            1 / alone_ready["p50"] if alone_ready.get("p50") else None,
        ),
    }
    struck = [f.fault for f in faults]
    summary["faults_not_struck"] = [name for name in _asked(args) if name not in struck]
    summary["goals"] = {
        "lost_0": summary["lost"] == 0 and summary["turns"]["sent"] <= summary["turns"]["stored"],
        "duplicated_0": summary["duplicated"] == 0,
        "http_5xx_0": summary["http_5xx"] == 0 and summary["no_answer"] == 0,
        "refused_0_outside_faults": not outside,
        "page_p95_under_200ms": bool(pages)
        and summary["page_latency_ms"]["p95"] < GOAL_PAGE_P95_MS,
        "every_fault_recovered_within_30s": not summary["faults_not_struck"]
        and all(f.recovery_s is not None and f.recovery_s < GOAL_RECOVERY_S for f in faults),
    }
    return summary


def _pages(requests) -> list[float]:
    return [r.seconds for r in requests if not r.endpoint.split(" ", 1)[1].startswith(LOGIN)]


def _ratio(value, baseline) -> float | None:
    return round(value / baseline, 2) if value and baseline else None


def _asked(args) -> list[str]:
    return [name.strip() for name in args.faults.split(",") if name.strip()]


def _quantiles(values: list[float], scale: float = 1.0) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(
            scale * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3 if scale == 1 else 1
        )

    return {"n": len(ordered), "p50": q(0.50), "p95": q(0.95), "p99": q(0.99)}
