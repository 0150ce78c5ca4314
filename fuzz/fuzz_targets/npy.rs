//! NPY bytes: the parser returns an array or a typed error, never panics, and an array
//! it accepts survives writing and reading back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = mtl_data::parse_npy(data) {
        let bytes = mtl_data::encode_npy(&a).expect("every NPY dtype can be written");
        let b = mtl_data::parse_npy(&bytes).expect("re-read");
        assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()));
        assert_eq!(a.as_bytes(), b.as_bytes());
    }
});
