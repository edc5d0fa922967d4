//! Page numbers and sizes, checked the same way for every paged list.

use crate::error::{AppError, AppResult};

pub const MAX_PAGE_SIZE: i64 = 100;

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

/// Checks `page` (from 1) and `page_size` (1 to 100).
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
    // The page's offset, `(page - 1) * page_size`, must be a number both engines take.
    if (page - 1).checked_mul(page_size).is_none() {
        return Err(AppError::invalid("page", format!("page must be at most {}.", i64::MAX / page_size)));
    }
    Ok((page, page_size))
}
