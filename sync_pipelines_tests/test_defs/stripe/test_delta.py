"""The delta reads the events feed: changed objects are fetched again, deleted ones soft-deleted, and a cursor the
feed no longer reaches back to falls back to a re-walk that says so in the run's metadata. (A first delta whose
cursor, the newest creation time in core, is older than the feed's 30 days is such a re-walk too.)"""

from __future__ import annotations

import stripe

from sync_pipelines_tests.test_defs.stripe.conftest import StripeWorld

DAY = 86_400


def _official(world: StripeWorld) -> stripe.StripeClient:
    return stripe.StripeClient(world.key(), base_addresses={"api": f"{world.root}/stripe"})


def test_a_customer_deleted_at_the_source_is_soft_deleted_by_the_delta(world: StripeWorld) -> None:
    world.backfill("customers")
    world.sim.mutate("acme", "customers", creates=1)
    first = world.delta("customers")  # puts the cursor on the feed
    assert first.counts.inserted == 1 and first.counts.updated == first.soft_deleted == 0
    victim = next(iter(_official(world).v1.customers.list(params={"limit": 5}))).id
    _official(world).v1.customers.delete(victim)
    changed = str(world.sim.mutate("acme", "customers", updates=1)["updated"][0])
    report = world.delta("customers")
    assert report.soft_deleted == 1
    row = world.row("customers", victim)
    assert row is not None and row.deleted_at is not None
    assert report.counts.updated >= 1 and world.row("customers", changed).deleted_at is None  # type: ignore[union-attr]
    assert "1 deleted" in str(report.metadata()["events_feed"])
    # The same events read again (the overlap, a rerun) change nothing.
    again = world.delta("customers")
    assert (again.counts.inserted, again.counts.updated, again.soft_deleted) == (0, 0, 0)


def test_a_deleted_invoice_takes_its_lines_with_it(world: StripeWorld) -> None:
    world.sim.mutate("acme", "customers", creates=1)  # the feed has an event to put the cursors on
    for entity in ("invoices", "invoice_line_items"):
        world.backfill(entity)
        world.delta(entity)
    # Stripe deletes only drafts (others are voided): delete until a draft went.
    gone: list[str] = []
    for _ in range(400):
        gone = [str(i) for i in world.sim.mutate("acme", "invoices", deletes=1).get("deleted", [])]
        if gone:
            break
    assert gone, "no draft invoice was deleted"
    (invoice,) = gone
    lines = world.scalar(
        "SELECT count(*) FROM core.stripe_invoice_line_items WHERE invoice_source_id = :i AND deleted_at IS NULL",
        i=invoice,
    )
    assert lines >= 1
    assert world.delta("invoices").soft_deleted == 1
    assert world.delta("invoice_line_items").soft_deleted == lines
    assert world.row("invoices", invoice).deleted_at is not None  # type: ignore[union-attr]


def test_a_cursor_older_than_the_feed_falls_back_to_a_rewalk_and_says_so(world: StripeWorld) -> None:
    world.backfill("customers")
    world.sim.mutate("acme", "customers", creates=1)
    world.delta("customers")
    world.sandbox.clock.advance(60)
    victim = str(world.sim.mutate("acme", "customers", deletes=1)["deleted"][0])
    # Stripe keeps events 30 days: the deletion (and everything up to the cursor) leaves the feed.
    world.sandbox.clock.advance(31 * DAY)
    world.sim.mutate("acme", "customers", creates=2)
    report = world.delta("customers")
    feed = str(report.metadata()["events_feed"])
    assert "older than the events feed reaches" in feed and "re-walked" in feed
    assert report.counts.inserted == 2
    assert report.soft_deleted == 1 and world.row("customers", victim).deleted_at is not None  # type: ignore[union-attr]
    # The re-walk moved the cursor onto the feed: the next delta reads events again.
    after = world.delta("customers")
    assert "re-walked" not in str(after.metadata()["events_feed"])
    assert (after.counts.inserted, after.counts.updated, after.soft_deleted) == (0, 0, 0)
