from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Campaign, GoldItem
from labeling.services.gold import gold_items_import


class Command(BaseCommand):
    help = (
        "Add gold items (quiz questions or checks) to a campaign from a JSONL file, all or "
        'nothing. One object per line: {"prompt": str} or {"context": [{"role": "human" | '
        '"assistant", "text": str}, …]} (ending with a human message); "responses": the '
        "campaign's K texts; \"answer\": the right response's index, or groups of indices "
        'best first under the campaign\'s question ([[1], [0, 2]]); "explanation": what '
        "workers read after answering. Every bad line is named; nothing is written unless "
        "every line is good."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--campaign", required=True, help="The campaign (slug).")
        parser.add_argument("--role", required=True, choices=GoldItem.Role.values)

    def handle(self, *args, file, campaign, role, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            target = Campaign.objects.get(slug=campaign)
        except Campaign.DoesNotExist:
            raise CommandError(f"no campaign {campaign!r}") from None
        try:
            with path.open("rb") as lines:
                items = gold_items_import(campaign=target, role=role, lines=lines, source=path.name)
        except ValidationError as exc:
            problems = "\n".join(f"  {message}" for message in exc.messages)
            raise CommandError(f"{path}: nothing was imported:\n{problems}") from None
        except OSError as exc:
            raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None
        self.stdout.write(f"added {len(items)} gold {role} items to campaign {campaign!r}")
