//! `data_dir()` and `data_root()` decide at run time: `MTL_DATA_DIR` (one directory or
//! a list), the current directory's `data/`, then the cache. A file of its own: it sets
//! environment variables and the current directory, which would race with other tests.

use mtl_data::{data_dir, data_root, olive_oil};
use std::path::PathBuf;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-data-dir-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

#[test]
fn the_lookup_happens_at_run_time() {
    // The workspace points MTL_DATA_DIR at the repository's data/ for cargo's runs.
    let shipped = data_root("olive-oil").unwrap();
    let olive = std::fs::read(shipped.join("olive-oil/olive.csv")).unwrap();

    // Unset: the current directory's data/, wherever the crate was compiled.
    std::env::remove_var("MTL_DATA_DIR");
    let cache = scratch("cache");
    std::env::set_var("MTL_CACHE_DIR", &cache);
    let here = scratch("cwd");
    std::fs::create_dir_all(here.join("data/olive-oil")).unwrap();
    std::fs::write(here.join("data/olive-oil/olive.csv"), &olive).unwrap();
    std::env::set_current_dir(&here).unwrap();
    assert_eq!(data_dir(), here.join("data"));
    assert_eq!(data_root("olive-oil").unwrap(), here.join("data"));
    assert_eq!(olive_oil(data_dir()).unwrap().len(), 572);

    // Not found: the message names every place searched, none from the build machine.
    let err = data_root("mnist").unwrap_err().to_string();
    assert!(
        err.contains(&here.join("data").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains(&cache.join("data").display().to_string()),
        "{err}"
    );
    assert!(!err.contains(env!("CARGO_MANIFEST_DIR")), "{err}");
    assert!(!err.contains("shared"), "{err}");

    // No data/ here: the cache.
    let bare = scratch("bare");
    std::env::set_current_dir(&bare).unwrap();
    std::fs::create_dir_all(cache.join("data")).unwrap();
    assert_eq!(data_dir(), cache.join("data"));

    // A list, searched in order; the first entry is data_dir().
    let a = scratch("a");
    let b = scratch("b");
    std::fs::create_dir_all(b.join("only-in-b")).unwrap();
    let list = std::env::join_paths([&a, &b]).unwrap();
    std::env::set_var("MTL_DATA_DIR", &list);
    assert_eq!(data_dir(), a);
    assert_eq!(data_root("only-in-b").unwrap(), b);

    // Empty counts as unset.
    std::env::set_var("MTL_DATA_DIR", "");
    assert_eq!(data_dir(), cache.join("data"));

    std::env::remove_var("MTL_DATA_DIR");
    std::env::remove_var("MTL_CACHE_DIR");
    for d in [cache, here, bare, a, b] {
        let _ = std::fs::remove_dir_all(d);
    }
}
