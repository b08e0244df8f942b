-- A group's host forwards the stored activities about a post again to a node whose first member
-- joins later (the group's recent posts): they are found by the object they changed.
create index inbox_activities_object on inbox_activities (object_id) where object_id is not null;
