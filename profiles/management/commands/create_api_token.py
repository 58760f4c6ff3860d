from django.core.management.base import BaseCommand, CommandError

from profiles.models import Datamart
from profiles.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a datamart; prints the raw token once, as the last line."

    def add_arguments(self, parser):
        parser.add_argument("--datamart", type=int, required=True)
        parser.add_argument("--name", required=True)

    def handle(self, *args, datamart, name, **options):
        found = Datamart.objects.filter(id=datamart).first()
        if found is None:
            raise CommandError(f"datamart {datamart} does not exist")
        token, raw_token = api_token_create(datamart=found, name=name)
        self.stdout.write(
            f"token {token.name!r} created for datamart {found.id}; it is shown only once:"
        )
        self.stdout.write(raw_token)
