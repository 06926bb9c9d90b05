"""Drive a running lab with simulated crowdworkers through its real HTTP endpoints."""

import json

from django.core.management.base import BaseCommand, CommandError

from labeling.crowd_sim.run import CrowdConfig, simulate
from labeling.models import Campaign


class Command(BaseCommand):
    help = (
        "Simulated workers enter a campaign (Prolific links or log-in), consent, pass the "
        "quiz and work through tasks against a running lab. The last line printed is one "
        "JSON object: workers, judgments, gold_seen, paused_workers, http_errors, lost, …"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url", required=True, help="The lab's root, e.g. http://127.0.0.1:8000/"
        )
        parser.add_argument("--campaign", required=True, help="The campaign's slug.")
        parser.add_argument("--workers", type=int, required=True)
        parser.add_argument("--tasks", type=int, required=True, help="Most tasks per worker.")
        parser.add_argument("--annotator", default="random", help="random, length or pm:SPEC.")
        parser.add_argument("--noise", type=float, default=0.0, help="Label noise, 0 to 1.")
        parser.add_argument("--gold-failing", type=int, default=0, help="Workers failing gold.")
        parser.add_argument("--entry", default="prolific", choices=["prolific", "login"])
        parser.add_argument("--think", type=float, default=1.0, help="Seconds per answer.")
        parser.add_argument("--timeout", type=float, default=600.0, help="Seconds, at most.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        if not options["url"].startswith(("http://", "https://")):
            raise CommandError(f"--url must be an http(s) URL, got {options['url']!r}")
        if not Campaign.objects.filter(slug=options["campaign"]).exists():
            raise CommandError(f"No campaign with the slug {options['campaign']!r}.")
        try:
            config = CrowdConfig(
                url=options["url"],
                campaign=options["campaign"],
                workers=options["workers"],
                tasks=options["tasks"],
                annotator=options["annotator"],
                noise=options["noise"],
                gold_failing=options["gold_failing"],
                entry=options["entry"],
                think_s=options["think"],
                timeout_s=options["timeout"],
                seed=options["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        summary = simulate(config)
        self.stdout.write(json.dumps(summary, sort_keys=True))
