-- Activities of a group that arrived before the post they refer to (a reply before its question,
-- when deliveries were retried out of order). Each waits here, under the id of what it waits for,
-- and is applied when that arrives.

create table waiting_activities (
    id bigint generated always as identity primary key,
    group_id bigint not null references groups (id) on delete cascade,
    -- The object id of the post it waits for.
    waiting_for text not null,
    activity_id text not null,
    activity text not null,
    received_at bigint not null,
    unique (group_id, activity_id)
);
create index waiting_activities_for on waiting_activities (group_id, waiting_for);
