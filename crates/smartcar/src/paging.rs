//! One paging mechanism for every list of the API: offset pages (v2 vehicles, permissions),
//! cursors (management) and page numbers (v3).

use std::future::Future;

use futures_core::Stream;

use crate::Error;

/// The items of every page, as a stream. `fetch(cursor)` returns one page's items and the
/// cursor of the next page (`None` on the last page). The stream ends on the last page, on an
/// empty page even if the server names a next one, and after `max_pages` pages, so a server
/// that never ends paging cannot loop us; a failing page is an error item, after which it ends.
pub(crate) fn pages<'a, T, C, F, Fut>(
    first: C,
    max_pages: u32,
    fetch: F,
) -> impl Stream<Item = Result<T, Error>> + 'a
where
    T: 'a,
    C: 'a,
    F: FnMut(C) -> Fut + 'a,
    Fut: Future<Output = Result<(Vec<T>, Option<C>), Error>> + 'a,
{
    struct State<T, C, F> {
        next: Option<C>,
        buffer: std::collections::VecDeque<T>,
        fetched: u32,
        fetch: F,
    }
    let start = State {
        next: Some(first),
        buffer: Default::default(),
        fetched: 0,
        fetch,
    };
    futures_util::stream::unfold(start, move |mut s| async move {
        loop {
            if let Some(item) = s.buffer.pop_front() {
                return Some((Ok(item), s));
            }
            if s.fetched >= max_pages {
                return None;
            }
            let cursor = s.next.take()?;
            s.fetched += 1;
            match (s.fetch)(cursor).await {
                Err(e) => return Some((Err(e), s)),
                Ok((items, next)) => {
                    if !items.is_empty() {
                        s.next = next;
                    }
                    s.buffer.extend(items);
                }
            }
        }
    })
}

/// Every item of every page (see [`pages`]), or the first error.
pub(crate) async fn collect<T, S>(stream: S) -> Result<Vec<T>, Error>
where
    S: Stream<Item = Result<T, Error>>,
{
    use futures_util::StreamExt;
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        out.push(item?);
    }
    Ok(out)
}

/// The next offset of an offset-paged list (`paging.count` items in all), or `None` when this
/// page was the last.
pub(crate) fn next_offset(offset: u32, received: usize, total: i32) -> Option<u32> {
    let next = offset.saturating_add(u32::try_from(received).unwrap_or(u32::MAX));
    (i64::from(next) < i64::from(total)).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test(flavor = "current_thread")]
    async fn stop_rules() {
        // A server that always names a next page is cut off after `max_pages`.
        let endless = pages(0u32, 3, |p| async move { Ok((vec![p], Some(p + 1))) });
        assert_eq!(collect(endless).await.unwrap(), vec![0, 1, 2]);
        // An empty page ends the list even with a next cursor.
        let empty = pages(0u32, 10, |p| async move {
            Ok((if p < 2 { vec![p] } else { vec![] }, Some(p + 1)))
        });
        assert_eq!(collect(empty).await.unwrap(), vec![0, 1]);
        // A failing page is an error item, then the stream ends.
        let failing = pages(0u32, 10, |p| async move {
            if p == 1 {
                Err(Error::invalid("page", "boom"))
            } else {
                Ok((vec![p], Some(p + 1)))
            }
        });
        let items: Vec<_> = failing.collect().await;
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok() && items[1].is_err());
        assert_eq!(next_offset(40, 10, 50), None);
        assert_eq!(next_offset(0, 10, 25), Some(10));
    }
}
