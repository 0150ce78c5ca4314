//! IDX bytes (raw or gzip): the parser returns an array or a typed error, never panics,
//! and an array it returns is as large as its shape says.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = mtl_data::parse_idx(data) {
        assert_eq!(a.as_bytes().len(), a.len() * a.dtype().size());
        assert_eq!(a.len(), a.shape().iter().product::<usize>());
    }
});
