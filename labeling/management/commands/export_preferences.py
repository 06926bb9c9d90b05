import json

from django.core.management.base import BaseCommand, CommandError

from labeling.exports import FORMATS, ExportError, export_stream, export_write


class Command(BaseCommand):
    help = "Write collected judgments in one of these formats (labeling.exports): " + "; ".join(
        f"{name}: {spec.help}" for name, spec in FORMATS.items()
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "-o",
            "--output",
            required=True,
            help="File to write ('-' for stdout); a folder for --format datasets.",
        )
        parser.add_argument("--format", default="hh-rlhf", choices=list(FORMATS))
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
        fmt = options["format"]
        chosen = {
            "campaign_slug": campaign,
            "include_weakest": include_weakest,
            "include_checks": include_checks,
        }
        try:
            if output == "-":
                count, where = self._to_stdout(export_stream(fmt, **chosen)), "stdout"
            else:
                result = export_write(fmt=fmt, path=output, **chosen)
                count, where = result.rows, f"{result.path} ({result.bytes} bytes)"
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"exported {count} rows ({fmt}) to {where}")

    def _to_stdout(self, rows) -> int:
        count = 0
        for row in rows:
            self.stdout.write(json.dumps(row, ensure_ascii=False))
            count += 1  # noqa: SIM113 (rows is a generator)
        return count
