-- One row that the readiness check rewrites after a write failed, to learn whether the database
-- takes writes again (see Store::ready); `checked_at` is when it last did.
create table node_health (
    id integer primary key check (id = 1),
    checked_at bigint not null
);
