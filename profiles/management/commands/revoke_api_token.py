from django.core.management.base import BaseCommand, CommandError

from profiles.models import ApiToken
from profiles.services import api_token_revoke


class Command(BaseCommand):
    help = "Revoke an API token by its name in a datamart, or by its prefix."

    def add_arguments(self, parser):
        parser.add_argument("--datamart", type=int, required=True)
        parser.add_argument("--name", required=True)

    def handle(self, *args, datamart, name, **options):
        tokens = list(
            ApiToken.objects.filter(datamart_id=datamart, name=name, revoked_ts__isnull=True)
        )
        if not tokens:
            raise CommandError(f"no active token named {name!r} in datamart {datamart}")
        for token in tokens:
            api_token_revoke(token=token)
        self.stdout.write(f"revoked {len(tokens)} token(s) named {name!r}")
