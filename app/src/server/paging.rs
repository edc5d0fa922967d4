//! Page numbers and sizes, checked the same way for every paged list.
//!
//! Every list is paged by the database, walking an index in the list's order
//! (no list is read whole to be cut in memory). Two shapes, by what the list is:
//!
//! - Lists that grow without bound and are read newest or oldest first (the
//!   audit log, keys, invitations) page by keyset: a [`crate::model::Slice`],
//!   the rows past the last one shown (`db::Conditions::past`), as fast at
//!   the millionth row as at the first and stable under concurrent writes.
//! - Lists people page through by number with a total shown (members of an
//!   Organization, a workspace or a group; workspaces; groups) are a
//!   [`crate::model::Page`]: `LIMIT`/`OFFSET` along the same kind of index
//!   (`org_members (org_id, name_key, user_id)`), which reads only the rows
//!   up to the page (page 200 of 10,000 members: about 3 ms).

use crate::error::{AppError, AppResult};

pub const MAX_PAGE_SIZE: i64 = 100;
/// No list is paged further: a million pages of 100.
pub const MAX_PAGE: i64 = 1_000_000;
/// The furthest offset of lists paged by `limit` and `offset`.
pub const MAX_OFFSET: i64 = 1_000_000_000;

/// Every item of a paged listing, for pages that show them all:
/// `fetch(page, page_size)` is called until the last page.
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> AppResult<Vec<T>>
where
    F: FnMut(i64, i64) -> Fut,
    Fut: std::future::Future<Output = AppResult<crate::model::Page<T>>>,
{
    let mut all = Vec::new();
    for page in 1.. {
        let batch = fetch(page, MAX_PAGE_SIZE).await?;
        let more = batch.has_next();
        all.extend(batch.items);
        if !more {
            break;
        }
    }
    Ok(all)
}

/// Checks `page` (1 to a million) and `page_size` (1 to 100).
pub fn page_bounds(page: Option<i64>, page_size: Option<i64>) -> AppResult<(i64, i64)> {
    let page = page.unwrap_or(1);
    let page_size = page_size.unwrap_or(20);
    if page < 1 {
        return Err(AppError::invalid("page", "page starts at 1."));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(AppError::invalid(
            "page_size",
            format!("page_size must be between 1 and {MAX_PAGE_SIZE}."),
        ));
    }
    if page > MAX_PAGE {
        return Err(AppError::invalid("page", format!("page must be at most {MAX_PAGE}.")));
    }
    Ok((page, page_size))
}
