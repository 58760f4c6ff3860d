"""The one compartment lookup (SPEC §1, §2): by id, or the datamart's default; never created."""

from __future__ import annotations

from profiles.errors import ProfileError
from profiles.models import Compartment, Datamart


class DatamartCompartments:
    """A datamart's compartments, loaded once (a handful of rows) for a batch of writes."""

    def __init__(self, datamart: Datamart) -> None:
        self.datamart = datamart
        rows = list(Compartment.objects.filter(datamart=datamart))
        self.by_id = {row.compartment_id: row for row in rows}
        self.by_pk = {row.pk: row for row in rows}
        self.default = next((row for row in rows if row.is_default), None)

    def get(self, compartment_id: int | None, *, field: str = "compartment_id") -> Compartment:
        """The named compartment, or the default one; an unknown id names `field` at fault."""
        if compartment_id is None:
            if self.default is None:
                raise ProfileError(
                    "NO_DEFAULT_COMPARTMENT",
                    f"datamart {self.datamart.id} has no default compartment",
                )
            return self.default
        compartment = self.by_id.get(compartment_id)
        if compartment is None:
            raise ProfileError(
                "UNKNOWN_COMPARTMENT",
                f"compartment {compartment_id} does not exist in datamart {self.datamart.id}",
                field=field,
            )
        return compartment
