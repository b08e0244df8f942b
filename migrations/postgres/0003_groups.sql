-- Disease groups on one node: groups, members (local accounts or remote actors), group invites,
-- posts with their edit history and "helpful" marks, attachments, the library, reports and the
-- moderation log. Times are milliseconds since the Unix epoch (UTC), as in the SQLite schema.
--
-- Federation (a later migration) will reuse these tables: groups and posts carry a stable random
-- `public_id` that becomes part of their ActivityPub URLs; a member is either a local account
-- (`user_id`) or a remote actor (`actor_id`, a URL); a post that came from another node keeps its
-- author's actor URL and the object id it had there (`origin_id`).

create table groups (
    id bigint generated always as identity primary key,
    public_id text not null unique,
    -- The actor URL of a group hosted on another node; null for groups hosted here.
    remote_actor_id text unique,
    name text not null,
    condition text not null,
    condition_code text,
    city text not null,
    language text not null check (language in ('zh-CN', 'en')),
    description text not null,
    rules text not null,
    member_list text not null check (member_list in ('members', 'moderators')),
    created_by bigint references users (id),
    created_at bigint not null,
    updated_at bigint not null,
    -- Active members, kept in step with group_members so the size limit is one atomic update.
    member_count integer not null default 0 check (member_count >= 0),
    storage_bytes bigint not null default 0 check (storage_bytes >= 0)
);

create table group_members (
    id bigint generated always as identity primary key,
    group_id bigint not null references groups (id) on delete cascade,
    user_id bigint references users (id) on delete cascade,
    actor_id text,
    -- The name a remote actor shows in this group (local members show their account's name).
    actor_name text,
    role text not null check (role in ('owner', 'doctor', 'moderator', 'member')),
    state text not null check (state in ('pending', 'active', 'left', 'removed', 'banned', 'rejected')),
    request_message text,
    created_at bigint not null,
    updated_at bigint not null,
    check ((user_id is null) <> (actor_id is null)),
    unique (group_id, user_id),
    unique (group_id, actor_id)
);
create index group_members_user on group_members (user_id, state);
create index group_members_group_state on group_members (group_id, state, id);

create table group_invites (
    id bigint generated always as identity primary key,
    group_id bigint not null references groups (id) on delete cascade,
    -- Kept in clear: moderators show the link and its QR code again. It only admits an account
    -- of this node that is logged in, into this one group.
    token text not null unique,
    label text,
    created_by bigint not null references users (id),
    created_at bigint not null,
    expires_at bigint,
    max_uses integer check (max_uses is null or max_uses > 0),
    uses integer not null default 0 check (uses >= 0),
    revoked_at bigint
);
create index group_invites_group on group_invites (group_id, id);

create table posts (
    id bigint generated always as identity primary key,
    public_id text not null unique,
    group_id bigint not null references groups (id) on delete cascade,
    kind text not null check (kind in ('announcement', 'question', 'reply')),
    -- The thread's first post for replies; null for announcements and questions.
    thread_id bigint references posts (id) on delete cascade,
    author_user_id bigint references users (id) on delete set null,
    author_actor_id text,
    author_name text,
    -- The object id on the node it came from; null for posts written here.
    origin_id text unique,
    title text,
    body text not null,
    pinned boolean not null default false,
    publish_at bigint not null,
    created_at bigint not null,
    edited_at bigint,
    deleted_at bigint,
    deleted_by text check (deleted_by in ('author', 'moderator')),
    helpful_count integer not null default 0,
    reply_count integer not null default 0,
    -- Lets a feed skip looking for attachments of the (many) posts that have none.
    attachment_count integer not null default 0,
    accepted_reply_id bigint references posts (id) on delete set null,
    answered_by_doctor boolean not null default false
);
-- The feed: newest (pinned first) and most helpful, top-level posts of one group.
create index posts_feed_newest on posts (group_id, pinned, publish_at, id) where thread_id is null;
create index posts_feed_helpful on posts (group_id, pinned, helpful_count, id) where thread_id is null;
create index posts_thread on posts (thread_id, id) where thread_id is not null;
-- The doctors' queue: open questions, oldest first.
create index posts_open_questions on posts (group_id, publish_at, id)
    where kind = 'question' and accepted_reply_id is null and not answered_by_doctor and deleted_at is null;

create table post_edits (
    id bigint generated always as identity primary key,
    post_id bigint not null references posts (id) on delete cascade,
    title text,
    body text not null,
    -- When this version was replaced, and why ('edit' or 'removed' by a moderator).
    replaced_at bigint not null,
    reason text not null check (reason in ('edit', 'removed'))
);
create index post_edits_post on post_edits (post_id, id);

create table post_helpful (
    post_id bigint not null references posts (id) on delete cascade,
    user_id bigint references users (id) on delete cascade,
    actor_id text,
    created_at bigint not null,
    check ((user_id is null) <> (actor_id is null)),
    unique (post_id, user_id),
    unique (post_id, actor_id)
);

create table attachments (
    id bigint generated always as identity primary key,
    public_id text not null unique,
    group_id bigint not null references groups (id) on delete cascade,
    post_id bigint references posts (id) on delete set null,
    uploaded_by bigint references users (id) on delete set null,
    content_type text not null,
    file_name text not null,
    size_bytes bigint not null,
    sha256 text not null,
    width integer,
    height integer,
    created_at bigint not null
);
create index attachments_group on attachments (group_id, id);
create index attachments_post on attachments (post_id);

create table library_folders (
    id bigint generated always as identity primary key,
    group_id bigint not null references groups (id) on delete cascade,
    name text not null,
    created_by bigint references users (id) on delete set null,
    created_at bigint not null,
    unique (group_id, name)
);

create table library_items (
    id bigint generated always as identity primary key,
    folder_id bigint not null references library_folders (id) on delete cascade,
    group_id bigint not null references groups (id) on delete cascade,
    post_id bigint references posts (id) on delete cascade,
    attachment_id bigint references attachments (id) on delete cascade,
    title text not null,
    added_by bigint references users (id) on delete set null,
    added_at bigint not null,
    check ((post_id is null) <> (attachment_id is null)),
    unique (folder_id, post_id),
    unique (folder_id, attachment_id)
);
create index library_items_group on library_items (group_id, id);

create table post_reports (
    id bigint generated always as identity primary key,
    group_id bigint not null references groups (id) on delete cascade,
    post_id bigint not null references posts (id) on delete cascade,
    reporter_user_id bigint references users (id) on delete set null,
    reason text not null,
    created_at bigint not null,
    resolved_at bigint,
    resolved_by bigint references users (id) on delete set null,
    resolution text check (resolution in ('removed', 'dismissed'))
);
create index post_reports_group on post_reports (group_id, resolved_at, id);
create unique index post_reports_open_once on post_reports (post_id, reporter_user_id) where resolved_at is null;

create table moderation_log (
    id bigint generated always as identity primary key,
    group_id bigint not null references groups (id) on delete cascade,
    moderator_user_id bigint references users (id) on delete set null,
    action text not null,
    target_member_id bigint references group_members (id) on delete set null,
    target_post_id bigint references posts (id) on delete set null,
    detail text,
    created_at bigint not null
);
create index moderation_log_group on moderation_log (group_id, id);
