import time

from django.core.management.base import BaseCommand, CommandError

from profiles.fake_profiles import fake_profiles_generate
from profiles.models import Datamart
from profiles.wording import count_noun


class Command(BaseCommand):
    help = (
        "Generate N fake user points, each with an account identifier and a profile, in bulk "
        "(for trying and benchmarking the back-office; no history is recorded)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--datamart", type=int, required=True)
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--batch", type=int, default=50_000, help="rows per transaction")
        parser.add_argument("--tag", help="names this run in the identifiers (default: random)")

    def handle(self, *args, datamart, count, batch, tag, **options):
        found = Datamart.objects.filter(id=datamart).first()
        if found is None:
            raise CommandError(f"datamart {datamart} does not exist")
        if count < 1 or batch < 1:
            raise CommandError("--count and --batch must be positive")
        started = time.monotonic()

        def progress(done: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-9)
            self.stdout.write(f"{done}/{count} profiles ({rate:,.0f}/s)")

        run = fake_profiles_generate(
            datamart=found, count=count, batch=batch, tag=tag, progress=progress
        )
        self.stdout.write(
            f"created {count_noun(run.created, 'profile')} in datamart {found.id} in "
            f"{time.monotonic() - started:.1f} s; account ids look like {run.account_id(0)}"
        )
