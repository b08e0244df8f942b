-- The inbox is a journal: an activity is recorded once (its id is unique), then applied, and
-- `applied_at` says that its effects are in place. What was recorded but not applied (the node
-- stopped in between, or the store failed while applying) is applied again: on redelivery, at
-- start and by housekeeping. Applying is idempotent, so an activity takes effect exactly once.
alter table inbox_activities add column applied_at bigint;
alter table inbox_activities add column apply_attempts integer not null default 0;
alter table inbox_activities add column apply_error text;
-- Activities received before the journal existed were applied when they arrived.
update inbox_activities set applied_at = received_at;
create index inbox_activities_unapplied on inbox_activities (seq) where applied_at is null;

-- An outbox entry is either an activity rendered when it was queued (`activity`), or an intent
-- (`intent`): what to tell a peer about an object whose new state exists only once the change
-- has committed (a post's state decided by its group's host, a group's library, a membership).
-- The intent is queued in the same transaction as the change; the delivery worker renders and
-- signs the object's state as it is when it is sent.
alter table outbox add column kind text not null default 'activity'
    check (kind in ('activity', 'intent'));
