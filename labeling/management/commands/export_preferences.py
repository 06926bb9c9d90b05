import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling import selectors
from models_backend.dialogue import format_pair


class Command(BaseCommand):
    help = (
        "Write collected comparisons as preference pairs: hh-rlhf JSONL, or the lab's own JSONL "
        "(context as chat messages, strength, campaign, models)."
    )

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", required=True, help="File to write ('-' for stdout).")
        parser.add_argument("--format", default="hh-rlhf", choices=["hh-rlhf", "lab"])
        parser.add_argument(
            "--include-weakest",
            action="store_true",
            help='Also export "about the same" comparisons (left out by default, as in the paper).',
        )
        parser.add_argument("--campaign", help="Only this campaign (slug).")

    def handle(self, *args, output, include_weakest, campaign, **options):
        chosen = {"include_weakest": include_weakest, "campaign_slug": campaign}
        if options["format"] == "lab":
            records = selectors.lab_export_rows(**chosen)
        else:
            records = (format_pair(pair) for _, pair in selectors.preference_pairs(**chosen))
        rows = (json.dumps(record, ensure_ascii=False) for record in records)
        if output == "-":
            count = sum(1 for row in rows if self.stdout.write(row) or True)
        else:
            count = _write_atomically(Path(output), rows)
        self.stderr.write(f"exported {count} pairs")


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
