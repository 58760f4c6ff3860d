from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _token_changed(sender, instance, **kwargs) -> None:
    from profiles.services.api_tokens import api_token_forget

    api_token_forget(tokens=[instance])


def _datamart_changed(sender, instance, **kwargs) -> None:
    from profiles.services.api_tokens import api_token_forget

    api_token_forget(tokens=list(instance.api_tokens.all()))


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Profiles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A cached token (profiles.services.api_tokens) never outlives a change of it or of its
        # datamart, whichever code made it: a service, the admin, a cascade of deletes.
        from profiles.models import ApiToken, Datamart

        post_save.connect(_token_changed, sender=ApiToken, dispatch_uid="api-token-saved")
        post_delete.connect(_token_changed, sender=ApiToken, dispatch_uid="api-token-deleted")
        post_save.connect(_datamart_changed, sender=Datamart, dispatch_uid="datamart-saved")
