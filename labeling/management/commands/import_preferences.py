from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.services.imports import preferences_import
from training.data import DataError, read_hh_rlhf


class Command(BaseCommand):
    help = "Load preference pairs (hh-rlhf JSONL) into the lab, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", default="hh-rlhf", choices=["hh-rlhf"])
        parser.add_argument(
            "--campaign", default="imported", help="Campaign (slug) to file the pairs under."
        )

    def handle(self, *args, file, campaign, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            pairs = read_hh_rlhf(path)  # the whole file is validated before anything is written
        except DataError as exc:
            raise CommandError(f"{exc} (nothing was imported)") from None
        count = preferences_import(
            pairs=pairs, source=f"import:{path.name}", campaign_slug=campaign
        )
        self.stdout.write(f"imported {count} pairs into campaign {campaign!r}")
