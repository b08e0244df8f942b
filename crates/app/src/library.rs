//! A group's library: named folders into which doctors and moderators save posts and files, so
//! that education material stays findable after the feed has moved on. Members read it.
//!
//! The library of a group hosted here is sent to every member's node with each change (an intent
//! queued in the change's transaction); a mirrored group's library is its host's, shown here as
//! the host keeps it: its curators on this node ask the host, which applies what they ask with
//! the same rules (`crate::actions`).

use caremesh_domain::{clean_line, group::limits};
use caremesh_federation::activity::GroupActionKind;
use caremesh_store::{
    Acting, Group, LibraryFolder, LibraryItem, NewLibraryItem, NewOutboxEntry, Post,
};

use crate::actions::{self, Outcome};
use crate::intents::{self, Intent};
use crate::posts::search_text;
use crate::{App, AppError, AppResult, GroupAccess};

/// Items a library's page shows at once.
pub const PAGE_ITEMS: u32 = 200;

/// The library's folders, by name (a library holds few, so they are not paged).
pub async fn folders(app: &App, ctx: &GroupAccess) -> AppResult<Vec<LibraryFolder>> {
    ctx.read()?;
    Ok(app.store.list_folders(ctx.group.id).await?)
}

/// Items of one folder (or of the whole library), newest first.
pub async fn items(
    app: &App,
    ctx: &GroupAccess,
    folder: Option<i64>,
    before: Option<i64>,
    limit: u32,
) -> AppResult<Vec<LibraryItem>> {
    ctx.read()?;
    let folder = match folder {
        None => None,
        Some(id) => Some(app.store.folder_by_id(ctx.group.id, id).await?.id),
    };
    Ok(app
        .store
        .library_items(ctx.group.id, folder, before, limit)
        .await?)
}

/// The whole library as its page shows it: the folders and their newest items.
pub async fn library(
    app: &App,
    ctx: &GroupAccess,
) -> AppResult<(Vec<LibraryFolder>, Vec<LibraryItem>)> {
    let folders = folders(app, ctx).await?;
    let items = items(app, ctx, None, None, PAGE_ITEMS).await?;
    Ok((folders, items))
}

/// Library items whose title, folder name or file name contains `q`, newest first.
pub async fn search(
    app: &App,
    ctx: &GroupAccess,
    q: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> AppResult<Vec<LibraryItem>> {
    ctx.read()?;
    let text = search_text(q)?;
    Ok(app
        .store
        .search_library(ctx.group.id, text, before, limit)
        .await?)
}

/// A curator creates a folder.
pub async fn create_folder(
    app: &App,
    ctx: &GroupAccess,
    name: &str,
) -> AppResult<Outcome<LibraryFolder>> {
    ctx.keep_library()?;
    let name = clean_line("name", name, limits::FOLDER_NAME)?;
    if ctx.hosted_elsewhere() {
        let action = GroupActionKind::CreateFolder { name };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    let folder =
        apply_create_folder(app, &ctx.group, &name, ctx.user.id.into(), Vec::new()).await?;
    Ok(Outcome::Done(folder))
}

/// A curator deletes a folder and its items (the posts and files themselves stay).
pub async fn delete_folder(app: &App, ctx: &GroupAccess, folder: i64) -> AppResult<Outcome<()>> {
    ctx.keep_library()?;
    let folder = app.store.folder_by_id(ctx.group.id, folder).await?;
    if ctx.hosted_elsewhere() {
        let action = GroupActionKind::DeleteFolder { name: folder.name };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    apply_delete_folder(app, &ctx.group, folder.id, Vec::new()).await?;
    Ok(Outcome::Done(()))
}

/// What a change to the library of a group hosted here tells every member's node, to queue with
/// the change.
async fn library_intents(app: &App, group: &Group) -> AppResult<Vec<NewOutboxEntry>> {
    intents::for_members(app, group, Intent::Library { group: group.id }).await
}

pub(crate) async fn apply_create_folder(
    app: &App,
    group: &Group,
    name: &str,
    by: Acting,
    extra: Vec<NewOutboxEntry>,
) -> AppResult<LibraryFolder> {
    let name = clean_line("name", name, limits::FOLDER_NAME)?;
    let mut outbox = library_intents(app, group).await?;
    outbox.extend(extra);
    let folder = app
        .store
        .create_folder_with(group.id, name, by, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(folder)
}

pub(crate) async fn apply_delete_folder(
    app: &App,
    group: &Group,
    folder: i64,
    extra: Vec<NewOutboxEntry>,
) -> AppResult<()> {
    let mut outbox = library_intents(app, group).await?;
    outbox.extend(extra);
    app.store
        .delete_folder_with(group.id, folder, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(())
}

/// The folder of this name (folders are known by name across nodes).
pub(crate) async fn folder_named(app: &App, group: &Group, name: &str) -> AppResult<LibraryFolder> {
    app.store
        .list_folders(group.id)
        .await?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or(AppError::NotFound("folder"))
}

/// The item of a folder that keeps a post.
pub(crate) async fn item_of_post(
    app: &App,
    group: &Group,
    folder: i64,
    post: &Post,
) -> AppResult<i64> {
    app.store
        .library_items(group.id, Some(folder), None, 1000)
        .await?
        .into_iter()
        .find(|i| i.post_public_id.as_deref() == Some(post.public_id.as_str()))
        .map(|i| i.id)
        .ok_or(AppError::NotFound("library item"))
}

/// What goes into a folder: a post of the group or one of its files, by id.
#[derive(Clone, Debug)]
pub enum ItemSource {
    Post(String),
    Attachment(String),
}

/// The longest default title taken from a post's text.
const DEFAULT_TITLE_CHARS: usize = 60;

/// A curator saves a post or a file into a folder, under `title` or, without one, the post's
/// title (or the start of its text) or the file's name.
pub async fn add_item(
    app: &App,
    ctx: &GroupAccess,
    folder: i64,
    source: ItemSource,
    title: Option<String>,
) -> AppResult<Outcome<LibraryItem>> {
    ctx.keep_library()?;
    if ctx.hosted_elsewhere() {
        // Posts are known to the host; files saved here stay the host's to save.
        let ItemSource::Post(p) = &source else {
            return Err(AppError::conflict(
                "hosted_elsewhere",
                "files are saved to this group's library by the hospital that hosts it",
            ));
        };
        let folder = app.store.folder_by_id(ctx.group.id, folder).await?;
        let post = app.store.post_by_public_id(ctx.group.id, p, None).await?;
        let action = GroupActionKind::SaveToLibrary {
            folder: folder.name,
            post: app.federation.post_ref(&post),
        };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    let (post_id, attachment_id, default_title) = match source {
        ItemSource::Post(p) => {
            let post = app.store.post_by_public_id(ctx.group.id, &p, None).await?;
            let title = post
                .title
                .clone()
                .unwrap_or_else(|| post.body.chars().take(DEFAULT_TITLE_CHARS).collect());
            (Some(post.id), None, title)
        }
        ItemSource::Attachment(a) => {
            let file = app.store.attachment_by_public_id(ctx.group.id, &a).await?;
            (None, Some(file.id), file.file_name)
        }
    };
    let item = save(
        app,
        &ctx.group,
        folder,
        (post_id, attachment_id),
        item_title(title, &default_title)?,
        ctx.user.id.into(),
        Vec::new(),
    )
    .await?;
    Ok(Outcome::Done(item))
}

/// The title an item is saved under: the one given, or a line of the post's title or text.
fn item_title(title: Option<String>, default_title: &str) -> AppResult<String> {
    Ok(match title {
        Some(t) => clean_line("title", &t, limits::ITEM_TITLE)?,
        None => clean_line(
            "title",
            &default_title.replace(['\n', '\t'], " "),
            limits::ITEM_TITLE,
        )
        .unwrap_or_else(|_| "—".to_owned()),
    })
}

async fn save(
    app: &App,
    group: &Group,
    folder: i64,
    (post_id, attachment_id): (Option<i64>, Option<i64>),
    title: String,
    by: Acting,
    extra: Vec<NewOutboxEntry>,
) -> AppResult<LibraryItem> {
    let mut outbox = library_intents(app, group).await?;
    outbox.extend(extra);
    let added_by = match by {
        Acting::Account(u) => u,
        // Recorded as by nobody of this node: the member belongs to another.
        Acting::Member(_) => caremesh_domain::UserId(0),
    };
    let item = app
        .store
        .add_library_item_with(
            NewLibraryItem {
                group_id: group.id,
                folder_id: folder,
                post_id,
                attachment_id,
                title,
                added_by,
                added_at: app.now(),
            },
            by,
            outbox,
        )
        .await?;
    app.federation.wake();
    Ok(item)
}

/// A curator of another node saves a post of a group hosted here into a folder.
pub(crate) async fn apply_add_post(
    app: &App,
    group: &Group,
    folder: i64,
    post: &Post,
    title: Option<String>,
    by: Acting,
    extra: Vec<NewOutboxEntry>,
) -> AppResult<LibraryItem> {
    let default_title = post
        .title
        .clone()
        .unwrap_or_else(|| post.body.chars().take(DEFAULT_TITLE_CHARS).collect());
    let title = item_title(title, &default_title)?;
    save(app, group, folder, (Some(post.id), None), title, by, extra).await
}

/// A curator takes an item out of the library.
pub async fn remove_item(app: &App, ctx: &GroupAccess, item: i64) -> AppResult<Outcome<()>> {
    ctx.keep_library()?;
    if ctx.hosted_elsewhere() {
        let kept = app
            .store
            .library_items(ctx.group.id, None, None, 1000)
            .await?
            .into_iter()
            .find(|i| i.id == item)
            .ok_or(AppError::NotFound("library item"))?;
        let (Some(pid), folder) = (kept.post_public_id, kept.folder_id) else {
            return Err(AppError::conflict(
                "hosted_elsewhere",
                "files are taken out of this group's library by the hospital that hosts it",
            ));
        };
        let folder = app.store.folder_by_id(ctx.group.id, folder).await?;
        let post = app
            .store
            .post_by_public_id(ctx.group.id, &pid, None)
            .await?;
        let action = GroupActionKind::RemoveFromLibrary {
            folder: folder.name,
            post: app.federation.post_ref(&post),
        };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    apply_remove_item(app, &ctx.group, item, Vec::new()).await?;
    Ok(Outcome::Done(()))
}

pub(crate) async fn apply_remove_item(
    app: &App,
    group: &Group,
    item: i64,
    extra: Vec<NewOutboxEntry>,
) -> AppResult<()> {
    let mut outbox = library_intents(app, group).await?;
    outbox.extend(extra);
    app.store
        .remove_library_item_with(group.id, item, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use caremesh_domain::{PostKind, Role};

    use super::*;
    use crate::AppError;
    use crate::group_fixtures::node;
    use crate::posts::{NewThread, ask};

    #[tokio::test]
    async fn a_post_saved_without_a_title_gets_one_line_from_its_text() {
        let n = node().await;
        let doctor = n.user("dr.wang", Role::Doctor).await;
        let group = n.group(&doctor, "Stroke rehabilitation").await;
        let ctx = n.access(&doctor, &group).await;
        let body = format!("第一行\n{}", "康复训练每天三次。".repeat(20));
        let post = ask(
            &n.app,
            &ctx,
            NewThread {
                kind: PostKind::Announcement,
                title: None,
                body: body.clone(),
                pinned: false,
                publish_at: None,
                attachments: Vec::new(),
            },
        )
        .await
        .unwrap();
        let folder = create_folder(&n.app, &ctx, "Exercises").await.unwrap();
        // What the thread page's "save" button sends: the post and the folder, no title.
        add_item(
            &n.app,
            &ctx,
            folder.clone().done().unwrap().id,
            ItemSource::Post(post.public_id.clone()),
            None,
        )
        .await
        .unwrap();
        let (_, items) = library(&n.app, &ctx).await.unwrap();
        assert_eq!(items.len(), 1);
        let expected: String = body.chars().take(60).collect::<String>().replace('\n', " ");
        assert_eq!(items[0].title, expected);
        assert!(!items[0].title.contains('\n'));
        assert_eq!(
            items[0].post_public_id.as_deref(),
            Some(post.public_id.as_str())
        );

        // Members read the library but do not keep it: nothing is stored for them.
        let patient = n.user("patient.zhao", Role::Patient).await;
        let invite = crate::invites::create(&n.app, &ctx, Default::default())
            .await
            .unwrap();
        crate::invites::accept(&n.app, &patient, &invite.token)
            .await
            .unwrap();
        let as_member = n.access(&patient, &group).await;
        let e = add_item(
            &n.app,
            &as_member,
            folder.clone().done().unwrap().id,
            ItemSource::Post(post.public_id),
            Some("mine".into()),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
        let (folders, items) = library(&n.app, &as_member).await.unwrap();
        assert_eq!((folders.len(), items.len()), (1, 1));
    }
}
