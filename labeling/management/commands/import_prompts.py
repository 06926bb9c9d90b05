from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Campaign
from labeling.services.imports import import_source
from labeling.services.items import ranking_items_create
from training.data import DataError, jsonl_rows
from training.loaders import check_context, parse_messages  # the loaders' rules for a context


class Command(BaseCommand):
    help = (
        "Make ranking items from a JSONL prompt file, all or nothing: one item per line, "
        'either {"prompt": str} (one human message) or {"context": [chat messages]} '
        '({"role": "user" | "assistant", "content": str}, user first and last). Each item '
        "gets the campaign's K generated responses."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--campaign", required=True, help="The ranking campaign (slug).")

    def handle(self, *args, file, campaign, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            target = Campaign.objects.get(slug=campaign)
        except Campaign.DoesNotExist:
            raise CommandError(f"no campaign {campaign!r}") from None
        source = import_source("prompts:", path.name)
        contexts = ((source, context) for context in read_prompts(path))
        try:  # read as it is written, in one transaction: a bad line undoes every item
            items = ranking_items_create(campaign=target, contexts=contexts)
        except DataError as exc:
            raise CommandError(f"{exc} (nothing was imported)") from None
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"made {len(items)} ranking items in campaign {campaign!r}")


def read_prompts(path: Path):
    """Each line's context as messages; a bad line raises ``DataError`` naming it."""
    for row, where in jsonl_rows(path):
        if ("prompt" in row) == ("context" in row):
            raise DataError(f"{where}: give exactly one of 'prompt' and 'context'")
        field = "prompt" if "prompt" in row else "context"
        if field == "prompt" and not isinstance(row["prompt"], str):
            raise DataError(f"{where}: 'prompt' must be a non-empty string")
        yield check_context(parse_messages(row[field], where, field), where)
