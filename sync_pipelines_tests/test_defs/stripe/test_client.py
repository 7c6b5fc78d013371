"""The client and the simulator's new lists: the official `stripe` library pages them, deleted webhook endpoints'
ids are never handed out again, children come out of their parents' pages, money lands as integer minor units."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import stripe

from sync_pipelines.defs.stripe.entities import LOAD_ORDER, SPECS
from sync_pipelines.lib import accounts
from sync_pipelines.lib.errors import OperatorError
from sync_pipelines_tests.test_defs.stripe.conftest import StripeWorld


def _official(world: StripeWorld, name: str = "acme") -> stripe.StripeClient:
    return stripe.StripeClient(world.key(name), base_addresses={"api": f"{world.root}/stripe"})


def test_the_official_client_pages_every_new_list_and_retrieves_each_object(world: StripeWorld) -> None:
    client = _official(world)
    v1 = client.v1
    lists = {
        "products": v1.products,
        "prices": v1.prices,
        "payment_intents": v1.payment_intents,
        "refunds": v1.refunds,
        "payouts": v1.payouts,
    }
    for name, service in lists.items():
        seen = [o.id for o in service.list(params={"limit": 7}).auto_paging_iter()]
        assert seen and len(seen) == len(set(seen)), name
        assert service.retrieve(seen[-1]).id == seen[-1]
    charges = list(v1.charges.list(params={"limit": 100}).auto_paging_iter())
    assert len(list(v1.payment_intents.list(params={"limit": 100}).auto_paging_iter())) == len(charges)
    refunded = {c.id: c.amount for c in charges if c.refunded}
    refunds = list(v1.refunds.list(params={"limit": 100}).auto_paging_iter())
    assert refunded and {r.charge: r.amount for r in refunds} == refunded
    with pytest.raises(stripe.InvalidRequestError):
        v1.payouts.retrieve("po_nothing")


def test_a_deleted_webhook_endpoints_id_is_never_handed_out_again(world: StripeWorld) -> None:
    endpoints = _official(world).v1.webhook_endpoints
    first = endpoints.create(params={"url": "http://127.0.0.1:9/a", "enabled_events": ["*"]})
    endpoints.delete(first.id)
    second = endpoints.create(params={"url": "http://127.0.0.1:9/b", "enabled_events": ["*"]})
    other = _official(world, "summit").v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/c", "enabled_events": ["*"]}
    )
    assert len({first.id, second.id, other.id}) == 3
    assert first.secret != second.secret


def test_every_entity_backfills_exactly_with_children_from_their_parents_pages(world: StripeWorld) -> None:
    for entity in LOAD_ORDER:
        world.backfill(entity)
    client = world.client_for(world.accounts["acme"])
    for entity in LOAD_ORDER:
        table = SPECS[entity].core
        live = world.scalar(f"SELECT count(*) FROM core.{table.name} WHERE account_id = :a AND deleted_at IS NULL",
                            a=world.accounts["acme"].id)  # fmt: skip
        assert live == client.total(entity, None, None) > 0, entity
    calls = world.scalar("SELECT count(*) FROM bridge.sync_logs WHERE entity_type = 'invoice_line_items'")
    invoices = world.scalar("SELECT count(*) FROM core.stripe_invoices")
    assert calls < invoices / 50  # one call per page of invoices, none per invoice
    orphans = world.scalar(
        "SELECT count(*) FROM core.stripe_invoice_line_items l WHERE NOT EXISTS "
        "(SELECT 1 FROM core.stripe_invoices i WHERE i.source_id = l.invoice_source_id)"
    )
    assert orphans == 0


def test_money_is_integer_minor_units_with_its_currency(world: StripeWorld) -> None:
    world.backfill("invoices")
    world.backfill("charges")
    for entity, column in (("invoices", "amount_due"), ("charges", "amount"), ("invoices", "total")):
        assert isinstance(SPECS[entity].core.c[column].type, sa.BigInteger)
    official = _official(world)
    charge = next(iter(official.v1.charges.list(params={"limit": 1})))
    row = world.row("charges", charge.id)
    assert row is not None and row.amount == charge.amount and isinstance(row.amount, int)
    assert row.currency == "usd"


def test_an_account_without_a_stored_key_is_one_clear_error(world: StripeWorld) -> None:
    account = accounts.upsert_account(world.engine, "stripe", "nokey", {"other": "x"})
    with pytest.raises(OperatorError, match="no api_key stored"):
        world.client_for(account)


def test_a_weekly_full_read_of_subscriptions_and_their_items_is_scheduled() -> None:
    from sync_pipelines.definitions import defs
    from sync_pipelines.defs.stripe.declaration import STRIPE

    names = {s.name: s for s in defs.schedules or []}
    assert "stripe_full_rewalk_monthly" in names and "stripe_full_rewalk_lists" not in names
    assert names["stripe_full_rewalk_monthly"].cron_schedule == "0 4 * * 0"
    assert set(STRIPE.rewalk_entities) == {"subscriptions", "subscription_items"}
