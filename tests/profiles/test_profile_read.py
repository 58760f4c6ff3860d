"""The API's hand-written reads (profiles.profile_read) find what the import engine's point
resolution finds (identifier_key and points_find, through user_point_find), then the ORM's
profile at the address: for any profiles written in two datamarts, any selector kind and any
address. The user point routes' user_point_get and user_point_detail use the same SQL."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profiles.errors import ProfileError
from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.merge import MergeMode, Strategy
from profiles.models import UserPoint, UserProfile
from profiles.profile_read import profile_get
from profiles.selectors import user_point_detail, user_point_find, user_point_get
from profiles.services import compartment_create, profile_object_upsert

COMPARTMENTS = [1, 1606]
ACCOUNTS = ["a", "b"]
ACCOUNT_SELECTORS = st.builds(
    AccountIdentifier, st.sampled_from(ACCOUNTS), st.sampled_from([None, *COMPARTMENTS])
)
IDENTIFIERS = st.one_of(
    ACCOUNT_SELECTORS,
    st.builds(EmailIdentifier, st.sampled_from(["h1", "h2"])),
    st.builds(UserAgentIdentifier, st.sampled_from(["vec:1", "vec:2"])),
)
# A selector read but never written: an account in a compartment the datamart lacks included.
READ_ONLY_SELECTORS = IDENTIFIERS | st.builds(
    AccountIdentifier, st.sampled_from(ACCOUNTS), st.just(999)
)
WRITES = st.lists(
    st.tuples(
        st.sampled_from([1, 2]),  # the datamart
        IDENTIFIERS,
        st.sampled_from(COMPARTMENTS),
        st.sampled_from([None, *ACCOUNTS]),  # the profile's account: None is anonymous
        st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 3), max_size=2),
    ),
    max_size=8,
)
ADDRESSES = [
    (compartment, account) for compartment in [*COMPARTMENTS, 999] for account in [None, *ACCOUNTS]
]


def engine_point(*, datamart, selector) -> UserPoint | None:
    if isinstance(selector, uuid.UUID):
        return UserPoint.objects.filter(datamart=datamart, pk=selector).first()
    try:
        return user_point_find(datamart=datamart, identifier=selector)
    except ProfileError:  # an account in a compartment the datamart lacks
        return None


def orm_profile(*, datamart, selector, compartment_id, user_account_id) -> UserProfile | None:
    point = engine_point(datamart=datamart, selector=selector)
    if point is None:
        return None
    return UserProfile.objects.filter(
        user_point=point,
        compartment__compartment_id=compartment_id,
        user_account_id=user_account_id,
    ).first()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(writes=WRITES, unknown_identifier=READ_ONLY_SELECTORS)
def test_the_hand_written_read_finds_the_profile_the_orm_finds(
    datamart, other_datamart, writes, unknown_identifier
):
    datamarts = {1: datamart, 2: other_datamart}
    with transaction.atomic():
        compartment_create(datamart=datamart, compartment_id=1606, name="CRM")
        compartment_create(datamart=other_datamart, compartment_id=1606, name="CRM")
        for datamart_id, identifier, compartment_id, account, properties in writes:
            profile_object_upsert(
                datamart=datamarts[datamart_id],
                selector=identifier,
                compartment_id=compartment_id,
                user_account_id=account,
                user_profile=properties,
                mode=MergeMode(Strategy.FORCE_REPLACE),
            )
        point_ids = list(UserPoint.objects.values_list("id", flat=True))
        selectors = [*{write[1] for write in writes}, unknown_identifier, *point_ids, uuid.uuid4()]
        for selector in selectors:
            point = engine_point(datamart=datamart, selector=selector)
            assert user_point_get(datamart=datamart, selector=selector) == point, selector
            detail = user_point_detail(datamart=datamart, selector=selector)
            assert detail == point, selector
            if point is not None:
                assert {p.pk for p in detail.profiles.all()} == set(
                    UserProfile.objects.filter(user_point=point).values_list("pk", flat=True)
                )
            for compartment_id, account in ADDRESSES:
                address = {"compartment_id": compartment_id, "user_account_id": account}
                expected = orm_profile(datamart=datamart, selector=selector, **address)
                found = profile_get(datamart_id=datamart.id, selector=selector, **address)
                if expected is None:
                    assert found is None, (selector, address)
                    continue
                assert found is not None, (selector, address)
                assert found.pk == expected.pk
                assert found.as_client_object() == expected.as_client_object()
                assert found.user_point_id == expected.user_point_id
        transaction.set_rollback(True)


@pytest.mark.postgres
def test_the_profile_read_is_prepared_once_and_then_planned_no_more(datamart, crm_compartment):
    """On PostgreSQL the read runs as a prepared statement of the connection: after five
    custom plans, PostgreSQL reuses a generic one (planning was 0.4 ms of a 0.45 ms read).
    The connection may hold the statement already, from earlier tests: its runs are counted
    from here."""
    for number in range(8):
        profile_object_upsert(
            datamart=datamart,
            selector=AccountIdentifier(f"p{number}", 1606),
            compartment_id=1606,
            user_account_id=f"p{number}",
            user_profile={"n": number},
            mode=MergeMode(Strategy.PARTIAL_UPDATE),
        )

    def statements() -> dict[str, tuple[int, int]]:
        """The connection's prepared reads of a profile by account selector, by name."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, generic_plans + custom_plans, generic_plans "
                "FROM pg_prepared_statements WHERE statement LIKE %s "
                "AND statement LIKE %s AND statement LIKE %s",
                ["%profiles_userprofile p%", "%ic.compartment_id%", "%user_account_id = $%"],
            )
            return {name: (runs, generic) for name, runs, generic in cursor.fetchall()}

    before = statements()
    for number in range(8):
        found = profile_get(
            datamart_id=datamart.id,
            selector=AccountIdentifier(f"p{number}", 1606),
            compartment_id=1606,
            user_account_id=f"p{number}",
        )
        assert found.properties == {"n": number}
    ran = {
        name: (runs - before.get(name, (0, 0))[0], generic)
        for name, (runs, generic) in statements().items()
        if runs != before.get(name, (0, 0))[0]
    }
    assert len(ran) == 1, ran  # one statement ran the eight reads
    ((runs, generic),) = ran.values()
    assert runs == 8 and generic >= 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_kept_cursor_follows_a_new_connection(datamart, crm_compartment):
    """The read's cursor is kept with its connection: once Django reconnects (CONN_MAX_AGE, a
    failover), the read prepares again on the new connection."""
    profile_object_upsert(
        datamart=datamart,
        selector=AccountIdentifier("p", 1606),
        compartment_id=1606,
        user_account_id="p",
        user_profile={"n": 1},
        mode=MergeMode(Strategy.PARTIAL_UPDATE),
    )
    address = {"compartment_id": 1606, "user_account_id": "p"}
    selector = AccountIdentifier("p", 1606)
    assert profile_get(datamart_id=datamart.id, selector=selector, **address).properties == {"n": 1}
    connection.close()
    found = profile_get(datamart_id=datamart.id, selector=selector, **address)
    assert found.properties == {"n": 1} and found.compartment_id == 1606


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_read_on_libpq_answers_what_the_cursor_answers(datamart, crm_compartment):
    """Outside a transaction the read runs on libpq (`_run_prepared`); counted queries run on
    Django's cursor. Both give the same profile, or none, for every selector kind and address,
    and a read still answers after the connection's prepared statements were dropped (psycopg
    sends `DEALLOCATE ALL` after some errors)."""
    from django.test.utils import CaptureQueriesContext

    from profiles import profile_read

    written = [
        (AccountIdentifier("a", 1606), 1606, "a", {"n": 1, "big": 2**62, "s": "é\u2028"}),
        (AccountIdentifier("b", None), 1, None, {"n": 2}),
        (EmailIdentifier("h1"), 1606, None, {"n": 3}),
        (UserAgentIdentifier("vec:1"), 1, "a", {"n": 4}),
    ]
    for selector, compartment_id, account, properties in written:
        profile_object_upsert(
            datamart=datamart,
            selector=selector,
            compartment_id=compartment_id,
            user_account_id=account,
            user_profile=properties,
            mode=MergeMode(Strategy.FORCE_REPLACE),
        )
    selectors = [
        *(write[0] for write in written),
        AccountIdentifier("a", None),
        AccountIdentifier("missing", 1606),
        *UserPoint.objects.values_list("id", flat=True),
        uuid.uuid4(),
    ]
    answered = []
    for _ in range(2):
        answered.append(0)
        for selector in selectors:
            for compartment_id, account in [(1606, "a"), (1606, None), (1, None), (1, "a")]:
                address = {"compartment_id": compartment_id, "user_account_id": account}
                on_libpq = profile_get(datamart_id=datamart.id, selector=selector, **address)
                with CaptureQueriesContext(connection) as queries:
                    on_cursor = profile_get(datamart_id=datamart.id, selector=selector, **address)
                assert len(queries) == 1
                assert on_libpq == on_cursor, (selector, address)
                answered[-1] += on_libpq is not None
        assert connection.connection in profile_read._prepared
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")
    # every profile, by its identifier and by its point's id, found again after the drop
    assert answered[0] == answered[1] >= 2 * len(written)
    assert profile_get(
        datamart_id=datamart.id,
        selector=AccountIdentifier("a", 1606),
        compartment_id=1606,
        user_account_id="a",
    ).properties == {"n": 1, "big": 2**62, "s": "é\u2028"}
