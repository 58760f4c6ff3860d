"""Every write of the domain, as `<entity>_<verb>` functions with keyword-only arguments: the
admin, the API, the import runner and the commands call these, never the ORM beside them.
Profile writes go through the write engine (`profiles.engine`); reads are in
`profiles.selectors`."""

from profiles.services.api_tokens import (
    api_token_authenticate,
    api_token_cache_key,
    api_token_create,
    api_token_digest,
    api_token_rename,
    api_token_revoke,
)
from profiles.services.compartments import (
    compartment_add,
    compartment_create,
    compartment_delete,
    compartment_edit,
    compartment_list_properties_set,
    compartment_make_default,
    compartment_update,
)
from profiles.services.datamarts import (
    datamart_create,
    datamart_delete,
    datamart_membership_add,
    datamart_membership_remove,
    datamart_membership_update,
    datamart_rename,
)
from profiles.services.profiles import (
    ProfileWrite,
    WriteOutcome,
    profile_command_apply,
    profile_delete,
    profile_object_upsert,
    profile_upsert,
)
from profiles.services.user_points import (
    Erasure,
    identifier_attach,
    user_point_create,
    user_point_delete,
    user_point_erase,
    user_point_resolve,
)

__all__ = [
    "Erasure",
    "ProfileWrite",
    "WriteOutcome",
    "api_token_authenticate",
    "api_token_cache_key",
    "api_token_create",
    "api_token_digest",
    "api_token_rename",
    "api_token_revoke",
    "compartment_add",
    "compartment_create",
    "compartment_delete",
    "compartment_edit",
    "compartment_list_properties_set",
    "compartment_make_default",
    "compartment_update",
    "datamart_create",
    "datamart_delete",
    "datamart_membership_add",
    "datamart_membership_remove",
    "datamart_membership_update",
    "datamart_rename",
    "identifier_attach",
    "profile_command_apply",
    "profile_delete",
    "profile_object_upsert",
    "profile_upsert",
    "user_point_create",
    "user_point_delete",
    "user_point_erase",
    "user_point_resolve",
]
