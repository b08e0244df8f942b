-- Groups across hospitals. A patient who joins a group hosted on another node does so as a
-- per-group pseudonym: an actor of its own (with its own key, in local_keys), a display name chosen
-- for that group, and nothing else. Only this node knows which account a pseudonym belongs to.

create table pseudonyms (
    id integer primary key autoincrement,
    public_id text not null unique,
    user_id integer not null references users (id) on delete cascade,
    -- The group (hosted here, or the local mirror of a remote group) the pseudonym acts in.
    group_id integer not null references groups (id) on delete cascade,
    display_name text not null,
    created_at integer not null,
    unique (user_id, group_id)
);
