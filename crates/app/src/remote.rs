//! Groups hosted by partner hospitals, from this node's side: asking to join one.

use caremesh_domain::{Role, ValidationError, validate_display_name};
use caremesh_store::{Group, Member, User};

use crate::{App, AppResult};

/// The name an account shows in a group hosted elsewhere: a patient's own choice for that group
/// (only this name crosses to the other nodes about them), or a doctor's or staff member's
/// account name, under which their hospital vouches for them.
pub fn join_name(user: &User, typed: Option<&str>) -> Result<String, ValidationError> {
    if user.role != Role::Patient {
        return Ok(user.display_name.clone());
    }
    let name = typed.map(str::trim).unwrap_or("");
    validate_display_name(name)?;
    Ok(name.to_owned())
}

/// Asks to join a group hosted by a partner hospital: patients as a per-group pseudonym,
/// doctors and staff as themselves. The membership is pending until the host answers (at once
/// with a valid invite token of the host's).
pub async fn join(
    app: &App,
    user: &User,
    group_url: &str,
    display_name: Option<&str>,
    invite_token: Option<&str>,
) -> AppResult<(Group, Member)> {
    let name = join_name(user, display_name)?;
    let invite = invite_token.map(str::trim).filter(|t| !t.is_empty());
    Ok(app
        .federation
        .join_remote_group(user, group_url.trim(), &name, invite)
        .await?)
}
