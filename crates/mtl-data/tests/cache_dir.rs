//! `data_root` falls back on the download cache (`$MTL_CACHE_DIR/data`). A file of its
//! own: it sets environment variables, which would race with other tests.

use mtl_data::{cache_data_dir, data_root};

#[test]
fn data_root_searches_the_cache_last() {
    let cache = std::env::temp_dir().join(format!("mtl-cache-test-{}", std::process::id()));
    std::env::set_var("MTL_CACHE_DIR", &cache);
    std::env::remove_var("MTL_DATA_DIR");
    assert_eq!(cache_data_dir(), cache.join("data"));
    let name = "zz-only-in-the-cache";
    let err = data_root(name).unwrap_err().to_string();
    assert!(err.contains(&format!("cargo xtask data {name}")), "{err}");
    assert!(
        err.contains(&cache.join("data").display().to_string()),
        "{err}"
    );
    std::fs::create_dir_all(cache.join("data").join(name)).unwrap();
    assert_eq!(data_root(name).unwrap(), cache.join("data"));
    // An explicit directory comes first.
    let explicit = cache.join("explicit");
    std::fs::create_dir_all(explicit.join(name)).unwrap();
    std::env::set_var("MTL_DATA_DIR", &explicit);
    assert_eq!(data_root(name).unwrap(), explicit);
    std::env::remove_var("MTL_DATA_DIR");
    std::env::remove_var("MTL_CACHE_DIR");
    std::fs::remove_dir_all(&cache).unwrap();
}
