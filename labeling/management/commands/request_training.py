from django.core.management.base import BaseCommand, CommandError

from labeling import selectors
from labeling.services.training import default_training_config, training_run_request


class Command(BaseCommand):
    help = "Queue a preference-model training run on every usable judgment collected so far."

    def add_arguments(self, parser):
        parser.add_argument("--model", help="Base model spec (default: LAB_PM_BASE_SPEC).")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--lr", type=float)
        parser.add_argument("--max-length", type=int)

    def handle(self, *args, **options):
        available = selectors.current_judgments().count()
        if available < 2:
            raise CommandError(f"need at least 2 usable judgments, have {available}")
        config = default_training_config()
        for key in ("model", "epochs", "batch_size", "lr", "max_length"):
            if options[key] is not None:
                config[key] = options[key]
        run = training_run_request(config=config)
        self.stdout.write(f"queued training run {run.pk} on {available} judgments: {config}")
