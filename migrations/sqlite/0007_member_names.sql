-- The name a local member shows in one group, chosen by the member for that group; null means the
-- account's display name. (Remote members' names stay in `actor_name`.)
alter table group_members add column member_name text;

-- In groups mirrored from other nodes a member has been known by their pseudonym's name, chosen
-- when joining: the group shows that name locally too.
update group_members
   set member_name = (select p.display_name from pseudonyms p
                       where p.user_id = group_members.user_id and p.group_id = group_members.group_id)
 where user_id is not null
   and group_id in (select id from groups where remote_actor_id is not null);
