//! `data_dir()` honours `MTL_DATA_DIR`. A file of its own: it sets an environment
//! variable, which would race with other tests in the same process.

use mtl_data::{data_dir, olive_oil};

#[test]
fn env_var_overrides_the_default_and_empty_is_ignored() {
    std::env::remove_var("MTL_DATA_DIR");
    let default = data_dir();
    assert!(
        default.join("olive-oil").join("olive.csv").is_file(),
        "{default:?}"
    );

    let elsewhere = std::env::temp_dir().join("mtl-data-test-elsewhere");
    std::env::set_var("MTL_DATA_DIR", &elsewhere);
    assert_eq!(data_dir(), elsewhere);
    assert!(olive_oil(data_dir()).is_err());

    std::env::set_var("MTL_DATA_DIR", "");
    assert_eq!(data_dir(), default);
    std::env::remove_var("MTL_DATA_DIR");
}
