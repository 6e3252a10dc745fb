//! The contract every [`ObjectStore`] implementation must pass (run by the tests of each).

use bytes::Bytes;
use futures::StreamExt;

use crate::error::Error;
use crate::{ByteRange, ByteStream, ObjectStore};

async fn read_all(s: ByteStream) -> Vec<u8> {
    let mut s = s;
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("stream chunk"));
    }
    out
}

fn chunked(data: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

/// Runs the whole contract against `store`, which must be empty; panics on the first breach.
pub async fn run_contract(store: &dyn ObjectStore) {
    // Absent keys.
    assert_eq!(store.head("c/absent").await.unwrap(), None);
    assert!(matches!(
        store.get("c/absent", None).await,
        Err(Error::NotFound(_))
    ));
    store
        .delete("c/absent")
        .await
        .expect("deleting an absent key succeeds");
    assert!(store.list("c/").await.unwrap().is_empty());

    // Small put/get/head.
    assert_eq!(
        store
            .put_bytes("c/a/one", Bytes::from_static(b"hello"))
            .await
            .unwrap(),
        5
    );
    assert_eq!(store.head("c/a/one").await.unwrap(), Some(5));
    assert_eq!(
        read_all(store.get("c/a/one", None).await.unwrap()).await,
        b"hello"
    );
    assert_eq!(&store.get_bytes("c/a/one", 5).await.unwrap()[..], b"hello");
    assert!(
        store.get_bytes("c/a/one", 4).await.is_err(),
        "limit enforced"
    );

    // Overwrite replaces.
    store
        .put_bytes("c/a/one", Bytes::from_static(b"bye"))
        .await
        .unwrap();
    assert_eq!(
        read_all(store.get("c/a/one", None).await.unwrap()).await,
        b"bye"
    );

    // Empty objects exist.
    store.put_bytes("c/empty", Bytes::new()).await.unwrap();
    assert_eq!(store.head("c/empty").await.unwrap(), Some(0));
    assert!(
        read_all(store.get("c/empty", None).await.unwrap())
            .await
            .is_empty()
    );

    // A large streamed object crosses the S3 part size (multipart) and reads back intact.
    let big: Vec<u8> = (0..(9 * 1024 * 1024 + 17))
        .map(|i| (i % 251) as u8)
        .collect();
    let n = store
        .put("c/big", chunked(big.clone(), 64 * 1024 + 3))
        .await
        .unwrap();
    assert_eq!(n, big.len() as u64);
    assert_eq!(store.head("c/big").await.unwrap(), Some(big.len() as u64));
    assert!(read_all(store.get("c/big", None).await.unwrap()).await == big);

    // Ranges, inclusive end, open end.
    let r = read_all(
        store
            .get(
                "c/big",
                Some(ByteRange {
                    start: 10,
                    end: Some(19),
                }),
            )
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r, &big[10..20]);
    let r = read_all(
        store
            .get(
                "c/big",
                Some(ByteRange {
                    start: big.len() as u64 - 5,
                    end: None,
                }),
            )
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r, &big[big.len() - 5..]);

    // A failing body stores nothing.
    let failing: ByteStream = Box::pin(
        futures::stream::iter(vec![Ok(Bytes::from_static(b"partial"))]).chain(
            futures::stream::once(async { Err(std::io::Error::other("boom")) }),
        ),
    );
    assert!(store.put("c/failed", failing).await.is_err());
    assert_eq!(store.head("c/failed").await.unwrap(), None);

    // Listing: by prefix, sorted, recursive, partial segment prefixes.
    store
        .put_bytes("c/a/two", Bytes::from_static(b"2"))
        .await
        .unwrap();
    store
        .put_bytes("c/a/sub/three", Bytes::from_static(b"33"))
        .await
        .unwrap();
    store
        .put_bytes("c/ab", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let keys: Vec<String> = store
        .list("c/a/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, vec!["c/a/one", "c/a/sub/three", "c/a/two"]);
    let keys: Vec<String> = store
        .list("c/a")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, vec!["c/a/one", "c/a/sub/three", "c/a/two", "c/ab"]);
    let sizes: Vec<u64> = store
        .list("c/a/s")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.size)
        .collect();
    assert_eq!(sizes, vec![2]);

    // Rename moves; renaming an absent key fails.
    store.rename("c/a/two", "c/moved/two").await.unwrap();
    assert_eq!(store.head("c/a/two").await.unwrap(), None);
    assert_eq!(
        read_all(store.get("c/moved/two", None).await.unwrap()).await,
        b"2"
    );
    assert!(store.rename("c/nope", "c/nope2").await.is_err());

    // Concat streams parts in order.
    let parts = vec![
        "c/a/one".to_string(),
        "c/big".to_string(),
        "c/ab".to_string(),
    ];
    let n = store.concat(&parts, "c/joined").await.unwrap();
    assert_eq!(n, 3 + big.len() as u64 + 1);
    let joined = read_all(store.get("c/joined", None).await.unwrap()).await;
    assert_eq!(&joined[..3], b"bye");
    assert_eq!(joined[joined.len() - 1], b'x');
    assert!(store.concat(&["c/nope".to_string()], "c/j2").await.is_err());
    assert_eq!(store.head("c/j2").await.unwrap(), None);

    // Delete.
    store.delete("c/a/one").await.unwrap();
    assert_eq!(store.head("c/a/one").await.unwrap(), None);

    // Hostile keys are refused everywhere.
    for bad in ["../escape", "/abs", "c/../../x", "c//x", ""] {
        assert!(
            matches!(store.head(bad).await, Err(Error::KeyInvalid(_))),
            "{bad:?}"
        );
        assert!(store.put_bytes(bad, Bytes::new()).await.is_err(), "{bad:?}");
        assert!(store.get(bad, None).await.is_err(), "{bad:?}");
        assert!(store.delete(bad).await.is_err(), "{bad:?}");
    }

    // Clean up so the suite can run again on a shared bucket.
    for m in store.list("c/").await.unwrap() {
        store.delete(&m.key).await.unwrap();
    }
    assert!(store.list("c/").await.unwrap().is_empty());
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        super::run_contract(&crate::memory::MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn fs_store_passes_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::fs::FsStore::open(dir.path()).await.unwrap();
        super::run_contract(&store).await;
    }
}
