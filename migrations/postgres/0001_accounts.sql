-- Accounts, doctor credentials, login sessions and sign-up invites.
-- Times are milliseconds since the Unix epoch (UTC), as in the SQLite schema.

create table users (
    id bigint generated always as identity primary key,
    username text not null unique,
    display_name text not null,
    role text not null check (role in ('admin', 'staff', 'doctor', 'patient')),
    password_hash text not null,
    disabled boolean not null default false,
    created_at bigint not null,
    updated_at bigint not null
);

create table doctor_credentials (
    user_id bigint primary key references users (id) on delete cascade,
    title text not null,
    specialty text not null,
    licence_number text not null,
    checked_on text not null,
    issued_at bigint not null,
    valid_until bigint,
    revoked_at bigint
);

create table sessions (
    token_hash text primary key,
    user_id bigint not null references users (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null
);
create index sessions_user_id on sessions (user_id);
create index sessions_expires_at on sessions (expires_at);

create table invites (
    id bigint generated always as identity primary key,
    token_hash text not null unique,
    role text not null check (role in ('admin', 'staff', 'doctor', 'patient')),
    label text,
    created_by bigint not null references users (id),
    created_at bigint not null,
    expires_at bigint not null,
    max_uses integer not null check (max_uses > 0),
    uses integer not null default 0 check (uses >= 0),
    revoked_at bigint
);
