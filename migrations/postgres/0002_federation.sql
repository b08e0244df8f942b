-- Federation: this node's keys, its partner hospitals, what it knows of remote actors and keys,
-- the activities it received (for idempotency), the objects they carried, and the durable outbox.
-- Times are milliseconds since the Unix epoch (UTC).

-- Signing keys of local actors (the node itself, doctors, later groups and pseudonyms).
-- The newest key of an actor signs; older ones stay published until `retired_at + grace`.
create table local_keys (
    key_id text primary key,
    actor_id text not null,
    private_key_pem text not null,
    public_key_pem text not null,
    created_at bigint not null,
    retired_at bigint
);
create index local_keys_actor on local_keys (actor_id, created_at);

-- Partner hospitals added by the admin CLI (partners in the config file are added at start).
create table partners (
    authority text primary key,
    base_url text not null,
    added_at bigint not null,
    source text not null check (source in ('config', 'cli'))
);

-- Public keys of remote actors, fetched with signed GETs and refreshed when a signature fails.
create table remote_keys (
    key_id text primary key,
    actor_id text not null,
    public_key_pem text not null,
    fetched_at bigint not null
);
create index remote_keys_actor on remote_keys (actor_id);

create table remote_actors (
    actor_id text primary key,
    actor_type text not null,
    inbox text,
    shared_inbox text,
    document text not null,
    fetched_at bigint not null
);

-- Every accepted inbound activity, once: the id makes redelivery harmless.
create table inbox_activities (
    seq bigint generated always as identity primary key,
    activity_id text not null unique,
    activity_type text not null,
    actor_id text not null,
    object_id text,
    peer text not null,
    payload text not null,
    received_at bigint not null
);
create index inbox_activities_peer on inbox_activities (peer, seq);

-- Objects carried by inbound activities, with tombstones, so that a Delete that arrives before
-- its Create wins, and an older Update never overwrites a newer one.
create table federated_objects (
    object_id text primary key,
    object_type text not null,
    attributed_to text not null,
    document text,
    published_at bigint,
    updated_at bigint,
    deleted_at bigint,
    last_activity_id text not null
);

-- One ordered queue per peer node. A peer is leased by one delivery worker at a time (across
-- replicas sharing a database); the lease expires so a crashed worker's peers are taken over.
create table outbox_peers (
    peer text primary key,
    inbox_url text not null,
    lease_owner text,
    lease_expires_at bigint,
    next_attempt_at bigint not null,
    consecutive_failures integer not null default 0,
    last_error text,
    last_success_at bigint
);

create table outbox (
    id bigint generated always as identity primary key,
    peer text not null references outbox_peers (peer),
    activity_id text not null,
    payload text not null,
    created_at bigint not null,
    attempts integer not null default 0,
    last_error text,
    last_attempt_at bigint,
    delivered_at bigint,
    parked_at bigint
);
create index outbox_queue on outbox (peer, id) where delivered_at is null and parked_at is null;
create index outbox_parked on outbox (parked_at) where parked_at is not null;
