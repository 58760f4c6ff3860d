import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from profiles.models import DatamartMembership
from profiles.services import datamart_create


class Command(BaseCommand):
    help = (
        "Create the demo datamart and a staff login for a first run (idempotent); prints the login."
    )

    def handle(self, *args, **options):
        datamart = datamart_create(datamart_id=1, name="Demo", default_compartment_id=1)
        username = os.environ.get("DEMO_ADMIN_USER", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save()
        DatamartMembership.objects.get_or_create(user=user, datamart=datamart)
        shown = password if created or user.check_password(password) else "(unchanged, set earlier)"
        self.stdout.write(
            f"demo datamart {datamart.id} ready; log in at /admin/ as {username} / {shown}"
        )
