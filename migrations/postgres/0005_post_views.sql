-- Which accounts have seen which post, kept only to be counted: a doctor sees how many members
-- have seen an announcement, never who (no route lists these rows).
create table post_views (
    post_id bigint not null references posts (id) on delete cascade,
    user_id bigint not null references users (id) on delete cascade,
    first_seen_at bigint not null,
    primary key (post_id, user_id)
);
