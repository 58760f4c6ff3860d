"""Admin pages that write through the services, never through `Model.save()` or `delete()`.

Django's form page calls `save_form` (build the object), then `save_model` and `save_related`,
and goes on with the object `save_form` returned: it logs it, names it in the message and
redirects to it. An admin here overrides `save_form` to call the service and return the
instance the service saved, so Django goes on with the stored object and `save_model` has
nothing left to do.

Django validates inline formsets after `save_form`: a change page that carries inlines writes in
`save_model` instead, through a service that saves the stored object Django loaded.
"""

from __future__ import annotations


class ServiceWritesMixin:
    """Saves and deletions of an admin, each through a service its subclass calls."""

    def save_model(self, request, obj, form, change):
        """Nothing: `save_form` saved `obj` through a service."""

    def save_related(self, request, form, formsets, change):
        # No many-to-many field to save: only the inline formsets, each through save_formset.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        # Read-only inlines: `commit=False` writes nothing, it records the rows for the log entry.
        formset.save(commit=False)
        if formset.new_objects or formset.changed_objects or formset.deleted_objects:
            raise NotImplementedError(
                f"{type(self).__name__} saves {formset.model.__name__} rows through a service"
            )

    def delete_model(self, request, obj):
        raise NotImplementedError(f"{type(self).__name__} deletes through a service")

    def delete_queryset(self, request, queryset):
        # One by one through the service: the history and the rules see every deletion.
        for obj in queryset:
            self.delete_model(request, obj)
