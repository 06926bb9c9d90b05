from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from labeling.models import Campaign, ModelVersion

INSTRUCTIONS = """Talk with the assistant about anything you would like help with: a question, \
a piece of writing, a plan, some code.

At every turn you will see two responses, A and B. Pick the one that is more helpful, \
honest and harmless, and say how much better it is. The conversation continues with your pick.

After a few turns, rate the whole conversation from 1 to 5."""

DEMO_USERS = [  # (username, password, is_staff)
    ("researcher", "hhh-demo-researcher", True),
    ("worker1", "hhh-demo-worker1", False),
    ("worker2", "hhh-demo-worker2", False),
]


class Command(BaseCommand):
    help = "Create the demo researcher, two demo crowdworkers and a helpful-mode campaign."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        for username, password, is_staff in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = is_staff
            user.set_password(password)
            user.save()
        spec = settings.LAB_DEFAULT_MODEL_SPEC
        assistant, _ = ModelVersion.objects.get_or_create(
            name=spec, defaults={"kind": ModelVersion.Kind.ASSISTANT, "spec": spec}
        )
        Campaign.objects.get_or_create(
            slug="helpful-chat",
            defaults={
                "name": "Helpful chat",
                "kind": Campaign.Kind.CHAT,
                "instructions": INSTRUCTIONS,
                "model_a": assistant,
                "model_b": assistant,
                "max_turns": 4,
            },
        )
        self.stdout.write("Demo logins:")
        for username, password, is_staff in DEMO_USERS:
            role = "researcher (admin)" if is_staff else "crowdworker"
            self.stdout.write(f"  {username:<11} password {password:<22} {role}")
