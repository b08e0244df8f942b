//! A group's library: named folders into which doctors and moderators save posts and files, so
//! that education material stays findable after the feed has moved on. Members read it.
//!
//! The library of a group hosted here is sent to every member's node after each change
//! ([`library_changed`]); a mirrored group's library is its host's, shown here as the host keeps
//! it, and cannot be changed here.

use caremesh_domain::{clean_line, group::limits};
use caremesh_store::{LibraryFolder, LibraryItem, NewLibraryItem};

use crate::posts::{federate, search_text};
use crate::{App, AppResult, GroupAccess};

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
pub async fn create_folder(app: &App, ctx: &GroupAccess, name: &str) -> AppResult<LibraryFolder> {
    ctx.keep_library()?;
    let name = clean_line("name", name, limits::FOLDER_NAME)?;
    let folder = app
        .store
        .create_folder(ctx.group.id, name, ctx.user.id, app.now())
        .await?;
    library_changed(app, ctx).await;
    Ok(folder)
}

/// A curator deletes a folder and its items (the posts and files themselves stay).
pub async fn delete_folder(app: &App, ctx: &GroupAccess, folder: i64) -> AppResult<()> {
    ctx.keep_library()?;
    app.store.delete_folder(ctx.group.id, folder).await?;
    library_changed(app, ctx).await;
    Ok(())
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
) -> AppResult<LibraryItem> {
    ctx.keep_library()?;
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
    let title = match title {
        Some(t) => clean_line("title", &t, limits::ITEM_TITLE)?,
        None => clean_line(
            "title",
            &default_title.replace(['\n', '\t'], " "),
            limits::ITEM_TITLE,
        )
        .unwrap_or_else(|_| "—".to_owned()),
    };
    let item = app
        .store
        .add_library_item(NewLibraryItem {
            group_id: ctx.group.id,
            folder_id: folder,
            post_id,
            attachment_id,
            title,
            added_by: ctx.user.id,
            added_at: app.now(),
        })
        .await?;
    library_changed(app, ctx).await;
    Ok(item)
}

/// A curator takes an item out of the library.
pub async fn remove_item(app: &App, ctx: &GroupAccess, item: i64) -> AppResult<()> {
    ctx.keep_library()?;
    app.store.remove_library_item(ctx.group.id, item).await?;
    library_changed(app, ctx).await;
    Ok(())
}

/// After a change to the library of a group hosted here: every member's node gets it.
pub(crate) async fn library_changed(app: &App, ctx: &GroupAccess) {
    federate("the library", app.federation.library_changed(&ctx.group)).await;
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
            folder.id,
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
            folder.id,
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
