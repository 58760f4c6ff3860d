from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "Imports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from imports.erasure import line_errors_erase
        from profiles.signals import user_point_erased

        user_point_erased.connect(line_errors_erase, dispatch_uid="imports.line_errors_erase")
