from django.core.management.base import BaseCommand

from profiles.services import datamart_create


class Command(BaseCommand):
    help = "Create a datamart with its default compartment (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, required=True, dest="datamart_id")
        parser.add_argument("--name", required=True)
        parser.add_argument("--default-compartment", type=int, required=True)

    def handle(self, *args, datamart_id, name, default_compartment, **options):
        datamart = datamart_create(
            datamart_id=datamart_id, name=name, default_compartment_id=default_compartment
        )
        self.stdout.write(f"datamart {datamart.id} ({datamart.name}) is ready")
