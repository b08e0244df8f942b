-- Groups across hospitals, acted on from any member's node.
--
-- A group's doctors and moderators may belong to another node: what they decide is recorded on
-- the host by their membership (they have no account here).
alter table moderation_log add column moderator_member_id integer
    references group_members (id) on delete set null;

-- A report made on a member's node reaches the host's moderators: on the host it is by the
-- reporter's actor (their pseudonym there); on the reporter's node `forwarded_at` says when it
-- was sent to the host.
alter table post_reports add column reporter_actor_id text;
alter table post_reports add column forwarded_at integer;
create unique index post_reports_open_once_remote on post_reports (post_id, reporter_actor_id)
    where resolved_at is null and reporter_actor_id is not null;

-- A mirrored group shows the member count its host has (members on every node).
alter table groups add column host_member_count integer;

-- What a doctor or moderator of a group hosted elsewhere asked its host to do (pin, accept an
-- answer, remove a post or a member, keep the library), and the host's answer: the host checks
-- the role against its own records, applies it and tells every node, or refuses and says why.
create table group_requests (
    id integer primary key autoincrement,
    group_id integer not null references groups (id) on delete cascade,
    user_id integer references users (id) on delete set null,
    activity_id text not null unique,
    action text not null,
    object text,
    state text not null check (state in ('pending', 'accepted', 'refused')),
    code text,
    reason text,
    created_at integer not null,
    answered_at integer
);
create index group_requests_group on group_requests (group_id, id);
