import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling import export_rows

FORMATS = ("hh-rlhf", "lab", "rankings", "red-team")


class Command(BaseCommand):
    help = (
        "Write collected judgments: hh-rlhf pairs (chosen = preferred under the question asked: "
        "in red-team data the less harmful reply), the lab's own JSONL (question, display order, "
        "answer, provenance), K-way rankings, or red-team attempts."
    )

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", required=True, help="File to write ('-' for stdout).")
        parser.add_argument("--format", default="hh-rlhf", choices=FORMATS)
        parser.add_argument(
            "--include-weakest",
            action="store_true",
            help='Also export "about the same" judgments (left out by default, as in the paper).',
        )
        parser.add_argument("--campaign", help="Only this campaign (slug).")
        parser.add_argument(
            "--include-checks",
            action="store_true",
            help="Also export what is not data: answers to gold checks, judgments of paused "
            'workers and quiz answers, each row marked "excluded": "gold" | "paused" | "quiz" '
            "(null on the rows that count). Never train on such a file unfiltered.",
        )

    def handle(self, *args, output, include_weakest, campaign, include_checks, **options):
        records = _records(
            options["format"],
            include_weakest=include_weakest,
            campaign=campaign,
            include_checks=include_checks,
        )
        rows = (json.dumps(record, ensure_ascii=False) for record in records)
        if output == "-":
            count = sum(1 for row in rows if self.stdout.write(row) or True)
        else:
            count = _write_atomically(Path(output), rows)
        self.stderr.write(f"exported {count} rows ({options['format']})")


def _records(fmt: str, *, include_weakest: bool, campaign: str | None, include_checks: bool):
    chosen = {"campaign_slug": campaign, "include_checks": include_checks}
    if fmt == "lab":
        return export_rows.lab_export_rows(include_weakest=include_weakest, **chosen)
    if fmt == "rankings":
        return export_rows.rankings_export_rows(**chosen)
    if fmt == "red-team":
        return export_rows.red_team_rows(**chosen)
    return export_rows.hh_rlhf_rows(include_weakest=include_weakest, **chosen)


def _write_atomically(path: Path, rows) -> int:
    """Write beside the target and rename: a failure leaves no half-written file."""
    if not path.parent.is_dir():
        raise CommandError(f"directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(row + "\n")
                count += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
