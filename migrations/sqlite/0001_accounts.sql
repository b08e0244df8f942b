-- Accounts, doctor credentials, login sessions and sign-up invites.
-- Times are milliseconds since the Unix epoch (UTC).

create table users (
    id integer primary key autoincrement,
    username text not null unique,
    display_name text not null,
    role text not null check (role in ('admin', 'staff', 'doctor', 'patient')),
    password_hash text not null,
    disabled integer not null default 0 check (disabled in (0, 1)),
    created_at integer not null,
    updated_at integer not null
);

create table doctor_credentials (
    user_id integer primary key references users (id) on delete cascade,
    title text not null,
    specialty text not null,
    licence_number text not null,
    checked_on text not null,
    issued_at integer not null,
    valid_until integer,
    revoked_at integer
);

create table sessions (
    token_hash text primary key,
    user_id integer not null references users (id) on delete cascade,
    created_at integer not null,
    expires_at integer not null
);
create index sessions_user_id on sessions (user_id);
create index sessions_expires_at on sessions (expires_at);

create table invites (
    id integer primary key autoincrement,
    token_hash text not null unique,
    role text not null check (role in ('admin', 'staff', 'doctor', 'patient')),
    label text,
    created_by integer not null references users (id),
    created_at integer not null,
    expires_at integer not null,
    max_uses integer not null check (max_uses > 0),
    uses integer not null default 0 check (uses >= 0),
    revoked_at integer
);
