from collections import Counter
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.services.imports import import_source, preferences_import
from training.data import DataError, iter_hh_rlhf
from training.lab_format import LabRecord, iter_lab_records
from training.questions import BETTER


class Command(BaseCommand):
    help = (
        "Load preference data into the lab, all or nothing: hh-rlhf pairs (chosen is better) "
        "or the lab's own export (question, display order and answer as recorded)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", default="hh-rlhf", choices=["hh-rlhf", "lab"])
        parser.add_argument(
            "--campaign", default="imported", help="Campaign (slug) to file the data under."
        )

    def handle(self, *args, file, campaign, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        kinds: Counter[str] = Counter()
        if options["format"] == "lab":
            records = iter_lab_records(path)
        else:
            records = _hh_rlhf_records(path, kinds)
        try:  # the file is read as it is written, in one transaction: a bad line undoes all
            count = preferences_import(
                records=records, source=import_source("import:", path.name), campaign_slug=campaign
            )
        except DataError as exc:
            raise CommandError(f"{exc} (nothing was imported)") from None
        except ValidationError as exc:
            raise CommandError(f"--campaign {campaign!r}: {' '.join(exc.messages)}") from None
        report = f"imported {count} comparisons into campaign {campaign!r}"
        if kinds:
            report += " (" + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) + ")"
        self.stdout.write(report)


def _hh_rlhf_records(path: Path, kinds: Counter):
    for pair in iter_hh_rlhf(path):
        kinds[pair.kind] += 1
        yield LabRecord(tuple(pair.context), (pair.chosen, pair.rejected), BETTER, [[0], [1]], None)
