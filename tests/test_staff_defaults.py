"""Forms that grant a role start at the least privilege: making someone an admin (or an API
token an admin's) takes a deliberate choice, never a forgotten select box."""

from __future__ import annotations

import pytest
from bs4 import Tag

from tests.helpers import Browserish, soup


def _chosen(select: Tag) -> str:
    """What a browser submits for ``select``: the selected option, else the first."""
    options = select.find_all("option")
    chosen = next((o for o in options if o.has_attr("selected")), options[0])
    return str(chosen["value"])


@pytest.mark.parametrize(
    ("page", "form"),
    [
        ("/staff/admin/users", "form[action='/staff/admin/users']"),
        ("/staff/admin/tokens", "form[action='/staff/admin/tokens']"),
    ],
)
def test_new_staff_and_tokens_default_to_sales(client: Browserish, page: str, form: str) -> None:
    client.sign_in("boss", "admin")
    html = soup(client.get(page))
    select = html.select_one(f"{form} select[name=role]")
    assert select is not None
    assert _chosen(select) == "sales"
    # Every role is still offered; admin only when chosen.
    values = [o["value"] for o in select.find_all("option")]
    assert sorted(values) == ["admin", "host", "marketer", "sales"]


def test_a_refused_new_member_keeps_the_role_chosen(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    refused = client.add_member(username="boss", password="long-enough-password", role="marketer")
    assert refused.status_code == 409
    select = soup(refused).select_one("form[action='/staff/admin/users'] select[name=role]")
    assert select is not None and _chosen(select) == "marketer"
