from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Campaign
from labeling.services.items import ranking_items_from_conversations


class Command(BaseCommand):
    help = (
        "Make ranking items from the finished conversations of the campaign's source "
        "campaign: one per turn, the dialogue up to and including its human message. "
        "Contexts the campaign already has are skipped. (Prompt files: import_prompts.)"
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="The ranking campaign (slug).")
        parser.add_argument("--limit", type=int, help="Make at most this many items.")

    def handle(self, *args, campaign, limit, **options):
        try:
            target = Campaign.objects.get(slug=campaign)
        except Campaign.DoesNotExist:
            raise CommandError(f"no campaign {campaign!r}") from None
        try:
            items = ranking_items_from_conversations(campaign=target, limit=limit)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"made {len(items)} ranking items in campaign {campaign!r}")
